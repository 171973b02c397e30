//! `in8-sim <scenario.toml> [--out DIR] [--seed N] [--nodes N] [--duration S]`: runs a scenario, prints
//! its table and writes SVG plots (metrics over time, per-broadcast delivery, and a
//! drawing of the overlay for networks up to 300 nodes). `cargo xtask sim` calls this in
//! the release profile.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("in8-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut out = PathBuf::from("target/sim");
    let (mut seed, mut nodes, mut duration) = (None, None, None);
    let mut core = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(args.next().ok_or("--out needs a directory")?),
            "--seed" => {
                seed = Some(
                    args.next()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or("--seed needs a number")?,
                )
            }
            "--nodes" => {
                nodes = Some(
                    args.next()
                        .and_then(|s| s.parse::<u32>().ok())
                        .ok_or("--nodes needs a number")?,
                )
            }
            "--duration" => {
                duration = Some(
                    args.next()
                        .and_then(|s| s.parse::<f64>().ok())
                        .ok_or("--duration needs seconds")?,
                )
            }
            "--core" => core = true,
            "-h" | "--help" => {
                println!(
                    "usage: in8-sim <scenario.toml> [--out DIR] [--seed N] [--nodes N] [--duration S] | in8-sim --core [--nodes N] [--seed N]"
                );
                return Ok(());
            }
            p => path = Some(PathBuf::from(p)),
        }
    }
    if core {
        let n = nodes.unwrap_or(100) as usize;
        let report = in8_sim::core_run::run(n, seed.unwrap_or(1))?;
        print!("{}", report.table());
        return Ok(());
    }
    let path = path.ok_or(
        "usage: in8-sim <scenario.toml> [--out DIR] [--seed N] [--nodes N] [--duration S] | in8-sim --core [--nodes N] [--seed N]",
    )?;
    let mut sc = in8_sim::load(&path).map_err(|e| e.to_string())?;
    if let Some(s) = seed {
        sc.seed = s;
    }
    if let Some(n) = nodes {
        sc.nodes = n;
    }
    if let Some(d) = duration {
        sc.duration_s = d;
    }
    let nodes = sc.nodes;
    let report = in8_sim::run(sc).map_err(|e| e.to_string())?;
    print!("{}", report.table());
    if let Some(rss) = in8_sim::peak_rss_bytes() {
        println!(
            "process peak RSS {:.1} MB = {:.0} bytes per node",
            rss as f64 / 1e6,
            rss as f64 / f64::from(nodes.max(1))
        );
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let write = |name: String, text: String| -> Result<(), String> {
        let p = out.join(name);
        std::fs::write(&p, text).map_err(|e| format!("writing {}: {e}", p.display()))?;
        println!("wrote {}", p.display());
        Ok(())
    };
    if report.samples.len() > 1 {
        write(
            format!("{}-timeline.svg", report.name),
            in8_sim::plot::timeline_svg(&report),
        )?;
    }
    if !report.broadcasts.is_empty() {
        write(
            format!("{}-broadcasts.svg", report.name),
            in8_sim::plot::broadcasts_svg(&report),
        )?;
    }
    if let Some(o) = &report.overlay {
        write(
            format!("{}-overlay.svg", report.name),
            in8_sim::plot::overlay_svg(o, &report.name),
        )?;
    }
    Ok(())
}

//! SVG plots, written by hand (no dependency): metrics over time, per-broadcast delivery,
//! and a drawing of the overlay for small networks.

use core::fmt::Write as _;

use crate::net::Nat;
use crate::report::{Overlay, Report};

const W: f64 = 720.0;
const H: f64 = 200.0;
const PAD: f64 = 48.0;

/// One line of a chart.
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A line chart panel at vertical offset `y0`.
fn panel(
    svg: &mut String,
    y0: f64,
    title: &str,
    series: &[Series<'_>],
    x_max: f64,
    unit: &str,
    marks: &[(f64, String)],
) {
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let (x0, x1, top, bottom) = (PAD, W - 16.0, y0 + 24.0, y0 + H - 28.0);
    let sx = |x: f64| x0 + (x / x_max.max(1e-9)) * (x1 - x0);
    let sy = |y: f64| bottom - (y / y_max) * (bottom - top);
    let _ = writeln!(
        svg,
        r#"<text x="{x0}" y="{}" font-size="13" font-weight="bold">{}</text>"#,
        y0 + 16.0,
        esc(title)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{x0}" y="{top}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        x1 - x0,
        bottom - top
    );
    for k in 0..=4 {
        let v = y_max * f64::from(k) / 4.0;
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="end" fill="#555">{}</text>"##,
            x0 - 4.0,
            sy(v) + 3.0,
            fmt_num(v)
        );
        let xv = x_max * f64::from(k) / 4.0;
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="#555">{:.0}{unit}</text>"##,
            sx(xv),
            bottom + 12.0,
            xv
        );
    }
    for (i, (t, label)) in marks.iter().enumerate() {
        let x = sx(*t);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#888" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" font-size="9" fill="#666">{}</text>"##,
            x + 2.0,
            top + 9.0 + 10.0 * (i % 3) as f64,
            esc(label),
        );
    }
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
            s.color,
            pts.join(" ")
        );
        let lx = x1 - 150.0;
        let ly = top + 12.0 + 13.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2"/><text x="{}" y="{}" font-size="11">{}</text>"#,
            ly - 4.0,
            lx + 14.0,
            ly - 4.0,
            s.color,
            lx + 18.0,
            ly,
            esc(s.name)
        );
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Metrics over time: live members, components and isolated nodes, view symmetry, mean
/// view sizes, messages per node per second.
pub fn timeline_svg(r: &Report) -> String {
    let x_max = r.sim_time_s;
    let s = &r.samples;
    let pts = |f: &dyn Fn(&crate::Sample) -> f64| s.iter().map(|x| (x.t_s, f(x))).collect();
    let mut rate = Vec::new();
    for w in s.windows(2) {
        let dt = (w[1].t_s - w[0].t_s).max(1e-9);
        let alive = f64::from(w[1].alive.max(1));
        rate.push((
            w[1].t_s,
            (w[1].messages - w[0].messages) as f64 / dt / alive,
        ));
    }
    let panels: Vec<(&str, Vec<Series<'_>>)> = vec![
        (
            "live members",
            vec![Series {
                name: "alive",
                color: "#1f77b4",
                points: pts(&|x| f64::from(x.alive)),
            }],
        ),
        (
            "overlay health",
            vec![
                Series {
                    name: "components",
                    color: "#d62728",
                    points: pts(&|x| f64::from(x.components)),
                },
                Series {
                    name: "isolated nodes",
                    color: "#ff7f0e",
                    points: pts(&|x| f64::from(x.isolated)),
                },
            ],
        ),
        (
            "view symmetry (1 = every active link reciprocated)",
            vec![Series {
                name: "symmetry",
                color: "#2ca02c",
                points: pts(&|x| x.symmetry),
            }],
        ),
        (
            "mean view sizes",
            vec![
                Series {
                    name: "active",
                    color: "#9467bd",
                    points: pts(&|x| x.mean_active),
                },
                Series {
                    name: "passive",
                    color: "#8c564b",
                    points: pts(&|x| x.mean_passive),
                },
            ],
        ),
        (
            "messages per node per second",
            vec![Series {
                name: "sent",
                color: "#17becf",
                points: rate,
            }],
        ),
    ];
    let mut svg = String::new();
    let total_h = H * panels.len() as f64 + 30.0;
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{total_h}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{PAD}" y="20" font-size="15">{} (seed {}): {} nodes</text>"#,
        esc(&r.name),
        r.seed,
        r.nodes_total
    );
    let mut marks: Vec<(f64, String)> = r.marks.clone();
    marks.extend(
        r.topology_switches
            .iter()
            .map(|(t, s)| (*t, format!("auto: {s}"))),
    );
    for (i, (title, series)) in panels.iter().enumerate() {
        panel(
            &mut svg,
            30.0 + H * i as f64,
            title,
            series,
            x_max,
            " s",
            &marks,
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Per-broadcast delivery: reliability and on-time delivery, RMR and LDH.
pub fn broadcasts_svg(r: &Report) -> String {
    let n = r.broadcasts.len().max(1) as f64;
    let x_of = |i: usize| i as f64 + 1.0;
    let series_a = vec![
        Series {
            name: "reliability",
            color: "#2ca02c",
            points: r
                .broadcasts
                .iter()
                .enumerate()
                .map(|(i, b)| (x_of(i), b.reliability))
                .collect(),
        },
        Series {
            name: "on time",
            color: "#1f77b4",
            points: r
                .broadcasts
                .iter()
                .enumerate()
                .map(|(i, b)| (x_of(i), b.on_time))
                .collect(),
        },
    ];
    let series_b = vec![
        Series {
            name: "RMR",
            color: "#d62728",
            points: r
                .broadcasts
                .iter()
                .enumerate()
                .map(|(i, b)| (x_of(i), b.rmr))
                .collect(),
        },
        Series {
            name: "LDH / 10",
            color: "#9467bd",
            points: r
                .broadcasts
                .iter()
                .enumerate()
                .map(|(i, b)| (x_of(i), f64::from(b.ldh) / 10.0))
                .collect(),
        },
    ];
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{}" font-family="sans-serif">"#,
        2.0 * H + 30.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="{PAD}" y="20" font-size="15">{}: per broadcast (x = broadcast number)</text>"#,
        esc(&r.name)
    );
    let none: [(f64, String); 0] = [];
    panel(&mut svg, 30.0, "delivery", &series_a, n + 1.0, "", &none);
    panel(
        &mut svg,
        30.0 + H,
        "redundancy and depth",
        &series_b,
        n + 1.0,
        "",
        &none,
    );
    svg.push_str("</svg>\n");
    svg
}

fn nat_color(n: Nat) -> &'static str {
    match n {
        Nat::Public => "#2ca02c",
        Nat::FullCone => "#17becf",
        Nat::Restricted => "#1f77b4",
        Nat::PortRestricted => "#ff7f0e",
        Nat::Symmetric => "#d62728",
    }
}

/// The overlay on a circle: active links (dark = eager, part of the broadcast tree; light =
/// lazy; thick = pinned by the topology policy), nodes coloured by NAT behaviour, dead
/// nodes hollow.
pub fn overlay_svg(o: &Overlay, title: &str) -> String {
    let size = 720.0;
    let c = size / 2.0;
    let rad = c - 40.0;
    let n = o.nodes.len().max(1) as f64;
    let pos = |i: u32| {
        let a = 2.0 * core::f64::consts::PI * f64::from(i) / n;
        (c + rad * a.cos(), c + rad * a.sin())
    };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{}" font-family="sans-serif">"#,
        size + 30.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="10" y="20" font-size="14">{}: active links (dark = eager / broadcast tree, light = lazy, thick = pinned)</text>"#,
        esc(title)
    );
    let _ = writeln!(svg, r#"<g transform="translate(0,20)">"#);
    for &(a, b, eager, pinned) in &o.edges {
        let ((x1, y1), (x2, y2)) = (pos(a), pos(b));
        let (color, width) = match (eager, pinned) {
            (_, true) => ("#444", 2.5),
            (true, false) => ("#333", 1.0),
            (false, false) => ("#ccc", 0.6),
        };
        let _ = writeln!(
            svg,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{color}" stroke-width="{width}"/>"#
        );
    }
    for node in &o.nodes {
        let (x, y) = pos(node.id);
        let fill = if node.alive {
            nat_color(node.nat)
        } else {
            "white"
        };
        let _ = writeln!(
            svg,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{fill}" stroke="{}"/>"#,
            nat_color(node.nat)
        );
    }
    let mut ly = 30.0;
    for nat in Nat::ALL {
        let _ = writeln!(
            svg,
            r#"<circle cx="{}" cy="{ly}" r="4" fill="{}"/><text x="{}" y="{}" font-size="11">{}</text>"#,
            size - 130.0,
            nat_color(nat),
            size - 120.0,
            ly + 4.0,
            nat.name()
        );
        ly += 15.0;
    }
    svg.push_str("</g>\n</svg>\n");
    svg
}

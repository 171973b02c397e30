//! A chat between two in8 nodes on a reliable data channel.
//!
//! ```text
//! cargo run -p in8-core --example chat                      # two nodes in this process, on loopback
//! cargo run -p in8-core --example chat -- invite            # print an invitation, chat with who joins
//! cargo run -p in8-core --example chat -- join <INVITATION> # join one (from another terminal or machine)
//! ```
//!
//! In the two-process form, lines typed on stdin are sent and the peer's lines printed;
//! end of input (Ctrl-D) leaves. The `in8 chat` command is the full version (RSVP when
//! one-way connection fails, JSON output).

use in8_artifact::{Identity, SignedInvitation, text};
use in8_core::{Config, Connection, InviteOptions, Node};
use in8_transport::{Channel, ChannelOptions};
use tokio::io::AsyncBufReadExt;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The channel label both sides use.
const LABEL: &str = "chat";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => in_process().await,
        ["invite"] => invite().await,
        ["join", invitation] => join(invitation).await,
        _ => Err("usage: chat [invite | join <INVITATION>]".into()),
    }
}

/// Alice and Bob in one process: Bob joins Alice's invitation and they talk.
async fn in_process() -> Result<(), Error> {
    let alice = Node::start(Config::loopback(Identity::generate(&mut rand::rng()))).await?;
    let bob = Node::start(Config::loopback(Identity::generate(&mut rand::rng()))).await?;
    let mut invite = alice.invite(InviteOptions::default()).await?;
    println!(
        "alice {} invites: {} bytes of invitation",
        alice.node_id().short(),
        invite.invitation().to_bytes().len()
    );

    // Bob joins (phase 1 works on loopback) and opens the chat channel.
    let bob_conn = bob.join(invite.invitation()).await?.connected().await?;
    let bob_chat = bob_conn
        .open_channel(ChannelOptions::reliable(LABEL))
        .await?;
    let alice_conn = invite.joined().await?;
    let alice_chat = alice_conn.accept_channel().await?;
    println!(
        "connected in {:.1} ms over a {} path",
        bob_conn.elapsed().as_secs_f64() * 1000.0,
        bob_conn.path().kind.sdp_name()
    );

    let script = [
        (&bob_chat, &alice_chat, "bob", "hi Alice, it's Bob"),
        (
            &alice_chat,
            &bob_chat,
            "alice",
            "welcome Bob! no server in between",
        ),
        (&bob_chat, &alice_chat, "bob", "encrypted end to end, too"),
    ];
    for (from, to, who, line) in script {
        from.send(line.as_bytes().to_vec()).await?;
        let got = to.recv().await?.ok_or("the channel closed")?;
        println!("{who}: {}", String::from_utf8_lossy(&got));
    }
    bob_chat.close().await?;
    bob_conn.close().await?;
    alice_conn.closed().await;
    bob.close().await;
    alice.close().await;
    Ok(())
}

/// Prints an invitation and chats with whoever joins it.
async fn invite() -> Result<(), Error> {
    let node = Node::start(Config::new(Identity::generate(&mut rand::rng()))).await?;
    let mut invite = node.invite(InviteOptions::default()).await?;
    println!("{}", text::encode_text(invite.invitation().to_bytes()));
    eprintln!("give this invitation to the peer: `chat join <it>`; waiting…");
    let conn = invite.joined().await?;
    let chat = conn.accept_channel().await?;
    converse(&conn, chat).await?;
    node.close().await;
    Ok(())
}

/// Joins an invitation and chats.
async fn join(invitation: &str) -> Result<(), Error> {
    let (bytes, _) = text::decode_text(invitation)?;
    let invitation = SignedInvitation::decode(&bytes)?;
    let node = Node::start(Config::new(Identity::generate(&mut rand::rng()))).await?;
    // A phase-1 failure comes back as an error here; `in8 chat` handles the RSVP.
    let conn = node.join(&invitation).await?.connected().await?;
    let chat = conn.open_channel(ChannelOptions::reliable(LABEL)).await?;
    converse(&conn, chat).await?;
    node.close().await;
    Ok(())
}

/// Sends stdin lines, prints the peer's, until either side is done.
async fn converse(conn: &Connection, chat: Channel) -> Result<(), Error> {
    let peer = conn.peer().short();
    eprintln!("chatting with {peer}; Ctrl-D leaves");
    // Receive on its own task so a message is never cut by the select below.
    let (tx, mut incoming) = tokio::sync::mpsc::channel(16);
    let reader = chat.clone();
    tokio::spawn(async move {
        while let Ok(Some(m)) = reader.recv().await {
            if tx.send(m).await.is_err() {
                break;
            }
        }
    });
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(l) => chat.send(l.into_bytes()).await?,
                None => break,
            },
            msg = incoming.recv() => match msg {
                Some(m) => println!("{peer}: {}", String::from_utf8_lossy(&m)),
                None => {
                    eprintln!("{peer} left");
                    break;
                }
            },
        }
    }
    chat.close().await.ok();
    conn.close().await?;
    Ok(())
}

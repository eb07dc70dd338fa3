//! `kith init`: a new device and a new account.

use crate::passphrase;
use anyhow::{Context, Result};
use node_core::node::Node;
use node_core::store::Profile;
use std::path::Path;

/// `kith init` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Display name for the account and this device.
    #[arg(long)]
    pub name: String,
    /// Make a profile without passphrase (for tests and demos: unprotected).
    #[arg(long)]
    pub no_passphrase: bool,
    /// Also make an offline recovery key, printed once; keep it safe.
    #[arg(long, conflicts_with = "join")]
    pub recovery_key: bool,
    /// Join an existing account with a code from `kith device invite` (its
    /// daemon must be running) instead of making a new account.
    #[arg(long, value_name = "CODE")]
    pub join: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `kith init`.
pub fn run(home: &Path, args: Args) -> Result<()> {
    let profile = Profile::new(home);
    if profile.exists() {
        anyhow::bail!("a kith profile already exists at {}", home.display());
    }
    let pass = if args.no_passphrase {
        None
    } else {
        Some(passphrase::choose()?)
    };
    if let Some(code) = &args.join {
        let (account, device) =
            super::runtime()?.block_on(join(profile, code, &args.name, pass.as_ref()))?;
        return print_ids(&args, account, device, None);
    }
    let (node, recovery) = super::runtime()?.block_on(async {
        let made = Node::create(
            profile,
            &args.name,
            pass.as_ref(),
            args.recovery_key,
            crate::now_ms(),
        )
        .await;
        let (node, recovery) = made.context("creating the profile")?;
        let out = (node.account(), node.device());
        node.close().await;
        anyhow::Ok((out, recovery))
    })?;
    let (account, device) = node;
    print_ids(&args, account, device, recovery)
}

fn print_ids(
    args: &Args,
    account: node_core::AccountId,
    device: node_core::DeviceId,
    recovery: Option<node_core::node::RecoveryCode>,
) -> Result<()> {
    if args.json {
        let mut v =
            serde_json::json!({ "account": account.to_string(), "device": device.to_string() });
        if let Some(r) = &recovery {
            v["recovery_code"] = r.to_words().into();
        }
        println!("{v}");
    } else {
        println!("account {account}");
        println!("device {device}");
        if let Some(r) = recovery {
            println!(
                "recovery code (shown once, write it down): {}",
                r.to_words()
            );
        }
        if args.no_passphrase {
            eprintln!(
                "warning: this profile has no passphrase; anyone who can read its files can read it"
            );
        }
    }
    Ok(())
}

/// How long joining may take before it gives up.
const JOIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Most bytes the inviting device may send (account log and self log).
const MAX_JOIN_BYTES: usize = 256 << 20;

/// `init --join`: makes a device key, asks the inviting device to add it,
/// and makes the profile from the account log and self log it sends.
async fn join(
    profile: Profile,
    code: &str,
    name: &str,
    pass: Option<&node_core::store::Passphrase>,
) -> Result<(node_core::AccountId, node_core::DeviceId)> {
    use node_core::crypto::SigningKey;
    use node_core::identity::entry::{check_name, sign_join};
    use node_core::node::devices::JoinSnapshot;
    use node_core::sync::Msg;
    use node_core::sync::join::{Invite, JoinMsg};
    use node_core::transport::Transport;

    check_name(name).map_err(|why| anyhow::anyhow!("invalid name: {why}"))?;
    let invite = Invite::parse(code)?;
    let now = crate::now_ms();
    if invite.expires <= now {
        anyhow::bail!("the invite code has expired; make a new one with `kith device invite`");
    }
    let key = SigningKey::generate();
    let join = sign_join(&key, invite.account, name);
    // Loopback-only codes are dialled from loopback (and so is nothing else).
    let listen: Vec<std::net::SocketAddr> =
        if !invite.hints.is_empty() && invite.hints.iter().all(|h| h.ip().is_loopback()) {
            vec![std::net::SocketAddr::from(([127, 0, 0, 1], 0))]
        } else {
            vec![]
        };
    let transport = Transport::bind(&key, &listen)
        .await
        .context("starting a link")?;
    let exchange = async {
        let link = transport
            .connect_join(invite.device, &invite.hints)
            .await
            .context("cannot reach the inviting device (is its daemon running?)")?;
        let (mut writer, mut reader) = link.open().await?;
        let request = JoinMsg::Request {
            secret: node_core::crypto::SecretBytes::new(*invite.secret.as_bytes()),
            name: name.to_owned(),
            join,
        };
        writer.send(&request.encode()).await?;
        let first = reader
            .recv()
            .await?
            .context("the inviting device closed the link")?;
        match JoinMsg::decode(&first).context("the inviting device's answer is not valid")? {
            JoinMsg::Accepted => {}
            JoinMsg::Refused(why) => anyhow::bail!("the inviting device refused: {why}"),
            JoinMsg::Request { .. } => anyhow::bail!("the inviting device's answer is not valid"),
        }
        let account_log = node_core::LogId::account(invite.account);
        let self_log = node_core::LogId::self_log(invite.account);
        let mut snapshot = JoinSnapshot {
            account: vec![],
            self_log: vec![],
        };
        let mut total = 0usize;
        loop {
            let frame = reader
                .recv()
                .await?
                .context("the link closed before the account was sent")?;
            total += frame.len();
            if total > MAX_JOIN_BYTES {
                anyhow::bail!("the inviting device sent too much");
            }
            match Msg::decode(&frame).context("the inviting device sent a damaged frame")? {
                Msg::Events { log, events } if log == account_log => {
                    snapshot.account.extend(events)
                }
                Msg::Events { log, events } if log == self_log => snapshot.self_log.extend(events),
                Msg::Synced { log } if log == self_log => break,
                _ => anyhow::bail!("the inviting device sent something unexpected"),
            }
        }
        writer.finish();
        link.close("joined");
        anyhow::Ok(snapshot)
    };
    let snapshot = tokio::time::timeout(JOIN_TIMEOUT, exchange).await;
    transport.close().await;
    let snapshot = snapshot.map_err(|_| anyhow::anyhow!("joining timed out"))??;
    let dir = profile.clone();
    match Node::create_joined(profile, name, pass, key, &invite, snapshot, now).await {
        Ok(node) => {
            let ids = (node.account(), node.device());
            node.close().await;
            Ok(ids)
        }
        Err(e) => {
            dir.remove_files();
            Err(anyhow::Error::new(e).context("joining the account"))
        }
    }
}

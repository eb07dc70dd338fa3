//! Finding people by `name@domain`: which nameservers answer for a domain,
//! asking them, and checking what they say.
//!
//! Discovery (unless nameservers are given): the SRV records
//! `_kith._tcp.DOMAIN` (each gives `https://TARGET[:PORT]`, lowest priority
//! first), then TXT records there of the form `kith-nameserver=URL`; only if
//! neither gives anything, `https://DOMAIN/.well-known/kith`, a JSON object
//! `{"nameserver": URL}`. Discovered URLs must be `https://` (plain `http://`
//! only to a loopback address, for local set-ups).
//!
//! Every nameserver found is asked, every answer is checked
//! (`NameRecord::verify`: the account's own device signed it, the account
//! log proves the device, the card is the account's), and answers that name
//! different accounts are reported as a disagreement and not used.
//!
//! For tests and private set-ups, `KITH_DNS_SERVER=IP:PORT` sends every DNS
//! question (also the host lookups of discovered URLs) to that server instead
//! of the system's, and `KITH_WELL_KNOWN_HTTP_PORT=PORT` fetches
//! `.well-known/kith` over plain HTTP on that port.
//!
//! Not here: storing the contact (the daemon does, from the card).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use data_encoding::BASE64;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};
use node_core::AccountId;
use node_core::names::{DomainName, Handle, NameAction, NameRecord};

/// How long one HTTP request to a nameserver may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Most nameservers asked for one handle.
const MAX_NAMESERVERS: usize = 8;
/// Largest answer read from a nameserver or `.well-known`.
const MAX_ANSWER: usize = 512 * 1024;

/// A checked answer: the card to add and who said so.
#[derive(Debug)]
pub struct Found {
    /// The handle, normalised.
    pub handle: Handle,
    /// The account.
    pub account: AccountId,
    /// The newest card among the answers.
    pub card: String,
    /// Nameservers that gave this answer.
    pub agreeing: Vec<String>,
    /// Nameservers that did not answer or had no record (with why).
    pub silent: Vec<(String, String)>,
}

/// DNS and HTTP, set up once per command.
pub struct Finder {
    resolver: TokioResolver,
    /// Whether DNS goes to a server named in `KITH_DNS_SERVER`.
    pinned: bool,
    well_known_port: Option<u16>,
}

impl std::fmt::Debug for Finder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finder")
            .field("pinned", &self.pinned)
            .finish_non_exhaustive()
    }
}

impl Finder {
    /// A finder using the system's DNS set-up, or `KITH_DNS_SERVER`.
    pub fn from_env() -> Result<Self> {
        let pinned = std::env::var("KITH_DNS_SERVER").ok();
        let resolver = match &pinned {
            Some(addr) => {
                let addr: SocketAddr = addr
                    .parse()
                    .with_context(|| format!("KITH_DNS_SERVER: `{addr}` is not IP:PORT"))?;
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let config = ResolverConfig::from_parts(None, vec![], vec![server]);
                Resolver::builder_with_config(config, TokioRuntimeProvider::default())
                    .build()
                    .context("setting up DNS")?
            }
            None => Resolver::builder_tokio()
                .context("reading the system's DNS set-up")?
                .build()
                .context("setting up DNS")?,
        };
        let well_known_port =
            match std::env::var("KITH_WELL_KNOWN_HTTP_PORT") {
                Ok(port) => Some(port.parse().with_context(|| {
                    format!("KITH_WELL_KNOWN_HTTP_PORT: `{port}` is not a port")
                })?),
                Err(_) => None,
            };
        Ok(Self {
            resolver,
            pinned: pinned.is_some(),
            well_known_port,
        })
    }

    /// The nameservers that answer for `domain`, best first.
    pub async fn discover(&self, domain: &DomainName) -> Result<Vec<String>> {
        let service = format!("_kith._tcp.{domain}.");
        let mut found: Vec<String> = Vec::new();
        if let Ok(srv) = self.resolver.srv_lookup(service.as_str()).await {
            let mut records: Vec<(u16, std::cmp::Reverse<u16>, String)> = srv
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(s) => {
                        let target = s.target.to_ascii();
                        let target = target.trim_end_matches('.');
                        // "." means: no such service here.
                        (!target.is_empty()).then(|| {
                            let url = if s.port == 443 {
                                format!("https://{target}")
                            } else {
                                format!("https://{target}:{}", s.port)
                            };
                            (s.priority, std::cmp::Reverse(s.weight), url)
                        })
                    }
                    _ => None,
                })
                .collect();
            records.sort();
            found.extend(records.into_iter().map(|(_, _, url)| url));
        }
        if let Ok(txt) = self.resolver.txt_lookup(service.as_str()).await {
            for record in txt.answers() {
                if let RData::TXT(t) = &record.data {
                    let text: Vec<u8> = t.txt_data.iter().flat_map(|c| c.iter().copied()).collect();
                    if let Some(url) =
                        String::from_utf8_lossy(&text).strip_prefix("kith-nameserver=")
                        && acceptable_url(url.trim())
                    {
                        found.push(url.trim().trim_end_matches('/').to_owned());
                    }
                }
            }
        }
        if found.is_empty()
            && let Some(url) = self.well_known(domain).await?
        {
            found.push(url);
        }
        let mut seen = std::collections::HashSet::new();
        found.retain(|u| seen.insert(u.clone()));
        found.truncate(MAX_NAMESERVERS);
        Ok(found)
    }

    async fn well_known(&self, domain: &DomainName) -> Result<Option<String>> {
        let url = match self.well_known_port {
            Some(port) => format!("http://{domain}:{port}/.well-known/kith"),
            None => format!("https://{domain}/.well-known/kith"),
        };
        let Ok(http) = self.http_for(&url).await else {
            return Ok(None);
        };
        let Ok(response) = http.get(&url).send().await else {
            return Ok(None);
        };
        if !response.status().is_success() {
            return Ok(None);
        }
        let Ok(body) = crate::http::read_limited(response, MAX_ANSWER).await else {
            return Ok(None);
        };
        let value: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return Ok(None),
        };
        Ok(value["nameserver"]
            .as_str()
            .map(str::trim)
            .filter(|u| acceptable_url(u))
            .map(|u| u.trim_end_matches('/').to_owned()))
    }

    /// An HTTP client; with a pinned DNS server, `url`'s host is looked up
    /// there first.
    async fn http_for(&self, url: &str) -> Result<reqwest::Client> {
        // No redirects: they could leave the pinned DNS or downgrade to http.
        let mut builder =
            crate::http::builder(HTTP_TIMEOUT).redirect(reqwest::redirect::Policy::none());
        let parsed = reqwest::Url::parse(url).with_context(|| format!("`{url}` is not a URL"))?;
        if self.pinned
            && let Some(url::Host::Domain(host)) = parsed.host()
        {
            // Never fall back to the system's DNS when told to use another.
            let ips = self
                .resolver
                .lookup_ip(format!("{host}."))
                .await
                .with_context(|| format!("cannot resolve {host}"))?;
            let port = parsed.port_or_known_default().unwrap_or(443);
            let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(ip, port)).collect();
            builder = builder.resolve_to_addrs(host, &addrs);
        }
        builder.build().context("building the HTTP client")
    }

    /// Asks every nameserver (given, or discovered) for `handle` and checks
    /// the answers.
    pub async fn find(&self, handle: &Handle, nameservers: &[String]) -> Result<Found> {
        let servers = if nameservers.is_empty() {
            let found = self.discover(handle.domain()).await?;
            if found.is_empty() {
                bail!(
                    "no nameserver found for {}: no _kith._tcp.{} SRV or TXT record, and no https://{}/.well-known/kith (give one with --nameserver URL)",
                    handle.domain(),
                    handle.domain(),
                    handle.domain()
                );
            }
            found
        } else {
            nameservers
                .iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect()
        };
        let mut answers: BTreeMap<AccountId, Vec<(String, NameRecord)>> = BTreeMap::new();
        let mut silent = Vec::new();
        for server in &servers {
            match self.ask(server, handle).await {
                Ok(record) => answers
                    .entry(record.account)
                    .or_default()
                    .push((server.clone(), record)),
                Err(err) => silent.push((server.clone(), format!("{err:#}"))),
            }
        }
        if answers.len() > 1 {
            let says: Vec<String> = answers
                .iter()
                .flat_map(|(account, list)| {
                    list.iter()
                        .map(move |(server, _)| format!("{server} says account {account}"))
                })
                .collect();
            bail!(
                "nameservers disagree about {handle}: {}; not adding it",
                says.join("; ")
            );
        }
        let Some((account, list)) = answers.into_iter().next() else {
            let why: Vec<String> = silent.iter().map(|(s, e)| format!("{s}: {e}")).collect();
            bail!("{handle} was not found ({})", why.join("; "));
        };
        let newest = list
            .iter()
            .max_by_key(|(_, r)| r.issued)
            .and_then(|(_, r)| r.card().map(str::to_owned))
            .ok_or_else(|| anyhow!("{handle}: no card in the answers"))?;
        Ok(Found {
            handle: handle.clone(),
            account,
            card: newest,
            agreeing: list.into_iter().map(|(s, _)| s).collect(),
            silent,
        })
    }

    /// One nameserver's checked record for `handle`.
    async fn ask(&self, server: &str, handle: &Handle) -> Result<NameRecord> {
        let url = format!("{server}/v1/names/{}", encode_path(&handle.to_string()));
        let http = self.http_for(&url).await?;
        let response = http.get(&url).send().await.context("unreachable")?;
        let value = crate::http::json_answer(response, MAX_ANSWER, "nameserver").await?;
        let record = value["record"]
            .as_str()
            .and_then(|r| BASE64.decode(r.as_bytes()).ok())
            .ok_or_else(|| anyhow!("the answer has no record"))?;
        let record = NameRecord::verify(&record, &[])
            .map_err(|e| anyhow!("its answer does not check out: {e}"))?;
        if &record.handle != handle {
            bail!("it answered for {} instead", record.handle);
        }
        if !matches!(record.action, NameAction::Bind { .. }) {
            bail!("its record releases the name");
        }
        Ok(record)
    }
}

/// Sends a signed record (from the daemon) to `server`.
pub async fn submit(finder: &Finder, server: &str, record_b64: &str) -> Result<serde_json::Value> {
    let url = format!("{}/v1/names", server.trim_end_matches('/'));
    let http = finder.http_for(&url).await?;
    let body = serde_json::json!({ "record": record_b64 }).to_string();
    let response = http
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach the nameserver at {server}"))?;
    crate::http::json_answer(response, MAX_ANSWER, "nameserver").await
}

/// Whether a discovered nameserver URL may be used: https, or http to a
/// loopback address.
fn acceptable_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    match parsed.scheme() {
        "https" => parsed.host_str().is_some(),
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        },
        _ => false,
    }
}

/// Percent-encodes a handle for a URL path (non-ASCII names included).
fn encode_path(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(acceptable_url("https://names.example.org"));
        assert!(acceptable_url("http://127.0.0.1:8482"));
        assert!(acceptable_url("http://[::1]:8482"));
        assert!(!acceptable_url("http://names.example.org"));
        assert!(!acceptable_url("ftp://names.example.org"));
        assert!(!acceptable_url("not a url"));
    }

    #[test]
    fn paths_are_encoded() {
        assert_eq!(encode_path("alice@x.org"), "alice@x.org");
        assert_eq!(encode_path("é@x.org"), "%C3%A9@x.org");
    }
}

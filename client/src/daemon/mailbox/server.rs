//! The HTTP client of mailbox servers: owner requests on fresh
//! challenges (register, tokens, prekeys, fetch, delete), contacts'
//! prekeys, and probing a URL.

use super::*;

pub(in crate::daemon) fn client() -> Result<reqwest::Client> {
    crate::http::client(HTTP_TIMEOUT)
}

pub(in crate::daemon) async fn prekeys(
    http: &reqwest::Client,
    grant: &Grant,
) -> Result<Vec<Vec<u8>>> {
    let url = format!("{}/v1/mailboxes/{}/prekeys", grant.url, grant.mailbox);
    let answer = http
        .get(&url)
        .header("authorization", grant.token.bearer())
        .send()
        .await
        .with_context(|| format!("asking {} for prekeys", grant.url))?;
    let body = check(answer).await?;
    let list = body["prekeys"]
        .as_array()
        .context("the mailbox answered without prekeys")?;
    Ok(list
        .iter()
        .filter_map(|b| BASE64.decode(b.as_str()?.as_bytes()).ok())
        .collect())
}

/// The JSON body of a 2xx answer (at most [`MAX_ANSWER`] bytes read);
/// otherwise the server's error message.
pub(in crate::daemon) async fn check(answer: reqwest::Response) -> Result<serde_json::Value> {
    crate::http::json_answer(answer, MAX_ANSWER, "mailbox server").await
}

/// One page of deposits.
pub(super) struct Page {
    pub(super) deposits: Vec<(String, Vec<u8>)>,
    pub(super) more: bool,
    pub(super) cursor: Option<String>,
}

/// Our own mailbox on its server: owner requests, each on a fresh challenge.
pub(super) struct Server<'a> {
    http: &'a reqwest::Client,
    url: &'a str,
    key: &'a MailboxKey,
}

impl<'a> Server<'a> {
    pub(super) fn new(http: &'a reqwest::Client, url: &'a str, key: &'a MailboxKey) -> Self {
        Self { http, url, key }
    }

    pub(super) fn path(&self, rest: &str) -> String {
        format!("/v1/mailboxes/{}{rest}", self.key.id())
    }

    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        rest: &str,
        body: Vec<u8>,
    ) -> Result<serde_json::Value> {
        self.call_query(method, rest, "", body).await
    }

    /// An owner request; `query` (e.g. `?after=…`) is not signed: it only
    /// pages what the signature already allows.
    pub(super) async fn call_query(
        &self,
        method: reqwest::Method,
        rest: &str,
        query: &str,
        body: Vec<u8>,
    ) -> Result<serde_json::Value> {
        let answer = self
            .http
            .post(format!("{}{}", self.url, self.path("/challenge")))
            .send()
            .await
            .with_context(|| format!("reaching the mailbox at {}", self.url))?;
        let challenge = check(answer).await?;
        let challenge: [u8; mailbox::CHALLENGE_LEN] = challenge["challenge"]
            .as_str()
            .and_then(|c| wire::from_base32(c, "challenge").ok())
            .and_then(|c| c.try_into().ok())
            .context("the mailbox sent a malformed challenge")?;
        let path = self.path(rest);
        let auth = mailbox::sign_request(self.key, &challenge, method.as_str(), &path, &body);
        let answer = self
            .http
            .request(method, format!("{}{path}{query}", self.url))
            .header("authorization", auth)
            .body(body)
            .send()
            .await
            .with_context(|| format!("reaching the mailbox at {}", self.url))?;
        check(answer).await
    }

    pub(super) async fn register(&self) -> Result<()> {
        self.call(reqwest::Method::PUT, "", vec![]).await.map(drop)
    }

    pub(super) async fn remove(&self) -> Result<()> {
        self.call(reqwest::Method::DELETE, "", vec![])
            .await
            .map(drop)
    }

    pub(super) async fn update_tokens(
        &self,
        add: &[&[u8; 32]],
        remove: &[&[u8; 32]],
        replace: bool,
    ) -> Result<()> {
        let text = |list: &[&[u8; 32]]| -> Vec<String> {
            list.iter().map(|h| wire::to_base32(&h[..])).collect()
        };
        let body =
            serde_json::json!({ "add": text(add), "remove": text(remove), "replace": replace });
        self.call(
            reqwest::Method::POST,
            "/tokens",
            body.to_string().into_bytes(),
        )
        .await
        .map(drop)
    }

    pub(super) async fn put_prekeys(&self, slot: &str, bundle: &[u8]) -> Result<()> {
        self.call(
            reqwest::Method::PUT,
            &format!("/prekeys/{slot}"),
            bundle.to_vec(),
        )
        .await
        .map(drop)
    }

    pub(super) async fn fetch(&self, after: Option<&str>) -> Result<Page> {
        let query = after.map(|a| format!("?after={a}")).unwrap_or_default();
        let body = self
            .call_query(reqwest::Method::GET, "/deposits", &query, vec![])
            .await?;
        let list = body["deposits"]
            .as_array()
            .context("the mailbox answered without deposits")?;
        let deposits = list
            .iter()
            .filter_map(|d| {
                let id = d["id"].as_str()?.to_owned();
                let body = BASE64.decode(d["body"].as_str()?.as_bytes()).ok()?;
                Some((id, body))
            })
            .collect();
        Ok(Page {
            deposits,
            more: body["more"].as_bool().unwrap_or(false),
            cursor: body["cursor"].as_str().map(str::to_owned),
        })
    }

    pub(super) async fn delete(&self, ids: &[String]) -> Result<()> {
        let body = serde_json::json!({ "ids": ids });
        self.call(
            reqwest::Method::POST,
            "/deposits/delete",
            body.to_string().into_bytes(),
        )
        .await
        .map(drop)
    }
}

/// Removes the account's mailbox from its server (before `mailbox off`
/// forgets the key). Deposits still there are lost; contacts are told to
/// stop depositing by the withdrawn grants.
pub(in crate::daemon) async fn remove_mailbox(url: &str, key: &MailboxKey) -> Result<()> {
    let http = client()?;
    Server::new(&http, url, key).remove().await
}

/// Checks that a server answers as a kith mailbox (before `mailbox use`
/// switches to it).
pub(in crate::daemon) async fn probe(url: &str) -> Result<()> {
    let http = client()?;
    let key = MailboxKey::generate();
    let answer = http
        .post(format!("{url}/v1/mailboxes/{}/challenge", key.id()))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let body = check(answer)
        .await
        .with_context(|| format!("{url} is not a kith mailbox"))?;
    if body["challenge"].as_str().is_none() {
        bail!("{url} is not a kith mailbox");
    }
    Ok(())
}

//! A typed client of the s4t / IoTronic v1 REST API, used by the `s4t` CLI (and later the
//! Crossplane provider).
//!
//! It sends `X-Auth-Token`, pins microversion 1.0 (no negotiation round trip), and turns the
//! double-encoded `error_message` bodies back into readable errors.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::time::Duration;

pub use reqwest::Method;
use reqwest::StatusCode;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API answered with an error status; `message` is IoTronic's `faultstring`.
    #[error("{message} (HTTP {status})")]
    Api { status: u16, message: String },
    #[error("cannot reach the s4t API at {url}: {source}")]
    Connect { url: String, source: reqwest::Error },
    #[error("the API answered with something that is not JSON: {0}")]
    Decode(String),
    #[error("invalid API URL {0:?}: use http://HOST:PORT")]
    BadUrl(String),
    #[error("the CA bundle is not PEM certificates: {0}")]
    BadCa(String),
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What a conditional GET got.
#[derive(Debug, Clone, PartialEq)]
pub enum Conditional {
    /// `304 Not Modified`: the body named by the tag sent is current.
    NotModified,
    /// A body, and its `ETag` if the API sent one (stock IoTronic does not).
    Body { etag: Option<String>, value: Value },
}

#[derive(Debug, Clone)]
pub struct Client {
    base: url::Url,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// `base` is the API root without `/v1` (e.g. `http://127.0.0.1:8812`).
    pub fn new(base: &str, token: Option<String>) -> Result<Client, ClientError> {
        Client::with_ca(base, token, None)
    }

    /// [`Client::new`] that also trusts the PEM certificates in `ca_pem` (a site whose
    /// certificate is not publicly trusted).
    pub fn with_ca(
        base: &str,
        token: Option<String>,
        ca_pem: Option<&str>,
    ) -> Result<Client, ClientError> {
        let mut base = url::Url::parse(base).map_err(|_| ClientError::BadUrl(base.to_string()))?;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(150))
            .user_agent(concat!("s4t-client/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| ClientError::BadCa(e.to_string()))?;
            if certs.is_empty() {
                return Err(ClientError::BadCa("no certificate in it".into()));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder.build().map_err(|e| ClientError::Connect {
            url: base.to_string(),
            source: e,
        })?;
        Ok(Client { base, token, http })
    }

    fn request(
        &self,
        method: Method,
        path: &str,
    ) -> Result<(url::Url, reqwest::RequestBuilder), ClientError> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|_| ClientError::BadUrl(path.to_string()))?;
        let mut req = self
            .http
            .request(method, url.clone())
            .header("Accept", "application/json")
            .header("X-OpenStack-Iotronic-API-Version", "1.0");
        if let Some(t) = &self.token {
            req = req.header("X-Auth-Token", t);
        }
        Ok((url, req))
    }

    /// Sends a request to `path` (relative, e.g. `v1/boards`) and returns the JSON body
    /// (`Value::Null` for 204).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let (url, mut req) = self.request(method, path)?;
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| ClientError::Connect {
            url: url.to_string(),
            source: e,
        })?;
        Client::read(url, resp).await
    }

    /// A GET that sends `etag` in `If-None-Match`: [`Conditional::NotModified`] while the body
    /// it names is current.
    pub async fn get_if_changed(
        &self,
        path: &str,
        etag: Option<&str>,
    ) -> Result<Conditional, ClientError> {
        let (url, mut req) = self.request(Method::GET, path)?;
        if let Some(tag) = etag {
            req = req.header("If-None-Match", tag);
        }
        let resp = req.send().await.map_err(|e| ClientError::Connect {
            url: url.to_string(),
            source: e,
        })?;
        if resp.status() == StatusCode::NOT_MODIFIED {
            return Ok(Conditional::NotModified);
        }
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let value = Client::read(url, resp).await?;
        Ok(Conditional::Body { etag, value })
    }

    async fn read(url: url::Url, resp: reqwest::Response) -> Result<Value, ClientError> {
        let status = resp.status();
        let text = resp.text().await.map_err(|e| ClientError::Connect {
            url: url.to_string(),
            source: e,
        })?;
        if status.is_success() {
            if status == StatusCode::NO_CONTENT || text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| ClientError::Decode(e.to_string()));
        }
        Err(ClientError::Api {
            status: status.as_u16(),
            message: error_message(&text),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::GET, path, None).await
    }

    /// Follows `next` links and gathers every item of a collection under `envelope`.
    pub async fn list_all(&self, path: &str, envelope: &str) -> Result<Vec<Value>, ClientError> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(p) = next.take() {
            let page = self.get(&p).await?;
            if let Some(items) = page.get(envelope).and_then(Value::as_array) {
                out.extend(items.iter().cloned());
            }
            next = next_page(&page);
        }
        Ok(out)
    }
}

/// The path (relative, with its query) of the page after `page`, from its `next` link.
pub fn next_page(page: &Value) -> Option<String> {
    page.get("next")
        .and_then(Value::as_str)
        .and_then(|n| url::Url::parse(n).ok())
        .map(|u| {
            let q = u.query().map(|q| format!("?{q}")).unwrap_or_default();
            format!("{}{q}", u.path().trim_start_matches('/'))
        })
}

/// The readable message of an error body: the WSME `faultstring` inside the double-encoded
/// `error_message`, the keystone-style `error.message`, or the raw text.
pub fn error_message(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return body.trim().to_string();
    };
    if let Some(inner) = v.get("error_message").and_then(Value::as_str) {
        if let Ok(fault) = serde_json::from_str::<Value>(inner) {
            if let Some(s) = fault.get("faultstring").and_then(Value::as_str) {
                return s.to_string();
            }
        }
        return inner.to_string();
    }
    if let Some(m) = v.pointer("/error/message").and_then(Value::as_str) {
        return m.to_string();
    }
    body.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_unwraps_every_format() {
        let wsme = r#"{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"Board x could not be found.\", \"debuginfo\": null}"}"#;
        assert_eq!(error_message(wsme), "Board x could not be found.");
        let ks = r#"{"error": {"code": 401, "title": "Unauthorized", "message": "needs auth"}}"#;
        assert_eq!(error_message(ks), "needs auth");
        assert_eq!(error_message("plain"), "plain");
    }
}

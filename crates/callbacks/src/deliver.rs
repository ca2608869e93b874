//! One delivery attempt: the request, and what its answer means for the
//! caller (deliver, retry, give up) and for the host's breaker.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};

use crate::body::{self, MultipartBody, Part, ReadError, SigningKey};
use crate::breaker::{BreakerConfig, BreakerState, Breakers, Health, Ticket};
use crate::guard::{self, AddressPolicy, GuardedResolver, RefusedName, UrlError};
use crate::{Error, Result};

/// How callbacks are delivered.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// The whole attempt — connect, send the body, receive the response
    /// head — must finish within this (default 15 s).
    pub timeout: Duration,
    /// The Standard Webhooks signing secret. `whsec_<base64>` (what Standard
    /// Webhooks tooling generates) is base64-decoded after the prefix and
    /// the bytes are the HMAC key; any other string is used as the key as it
    /// is, byte for byte. `None` sends no `webhook-*` headers.
    pub secret: Option<String>,
    /// Permit private, shared, link-local and metadata addresses, and
    /// loopback (see [`AddressPolicy`]).
    pub allow_private: bool,
    /// Permit loopback addresses only: for a server that itself listens on
    /// loopback (the embedded default), so its `/api/v1/dev/null` sink works.
    pub allow_loopback: bool,
    /// The breaker per host.
    pub breaker: BreakerConfig,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            timeout: Duration::from_secs(15),
            secret: None,
            allow_private: false,
            allow_loopback: false,
            breaker: BreakerConfig::default(),
            user_agent: format!("Peedy/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

impl CallbackConfig {
    /// The address policy these flags make.
    pub fn policy(&self) -> AddressPolicy {
        AddressPolicy {
            allow_loopback: self.allow_loopback,
            allow_private: self.allow_private,
        }
    }
}

/// One callback to deliver.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The `callback_url`.
    pub url: &'a str,
    /// The `webhook-id` header: the same for every attempt of this delivery,
    /// so receivers can drop duplicates.
    pub webhook_id: &'a str,
    /// The `id` form field: the document id.
    pub document_id: &'a str,
    /// The `file` part's filename: the upload's sanitized filename.
    pub filename: &'a str,
    /// Parts whose concatenation is the stamped PDF, e.g. the original input
    /// then the appended update (files, or blobs wherever they are stored).
    /// Streamed, never read whole into memory.
    pub parts: &'a [Arc<dyn Part>],
}

/// What an attempt came to, and what the caller should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered 2xx. Done.
    Delivered {
        /// The status code.
        status: u16,
    },
    /// Try again later, with backoff: 5xx, 408, 429, 3xx (redirects are not
    /// followed), timeouts, connection and DNS errors, and failures to read
    /// our own files.
    Retry {
        /// What happened, for `/status` and logs.
        reason: String,
        /// The status code, when the receiver answered.
        status: Option<u16>,
        /// The receiver's `Retry-After` (seconds or HTTP date; a date in the
        /// past is zero). Taken as given — the caller clamps it to its own
        /// retry horizon.
        retry_after: Option<Duration>,
    },
    /// Do not retry: 4xx other than 408, 410 and 429; a URL that is invalid
    /// or points to a refused address.
    Permanent {
        /// What happened, for `/status` and logs.
        reason: String,
        /// The status code, when the receiver answered.
        status: Option<u16>,
    },
    /// The receiver answered 410 Gone: it wants no more callbacks for this
    /// delivery. Stop, as done.
    Gone,
    /// Not attempted: the host's breaker is open. Defer until `until`
    /// without spending an attempt.
    BreakerOpen {
        /// When the breaker lets a delivery through again (at the earliest).
        until: SystemTime,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Delivered { status } => write!(f, "delivered (HTTP {status})"),
            Outcome::Retry { reason, .. } => write!(f, "will retry: {reason}"),
            Outcome::Permanent { reason, .. } => write!(f, "failed: {reason}"),
            Outcome::Gone => f.write_str("receiver answered 410 Gone; not retried"),
            Outcome::BreakerOpen { until } => {
                let secs = until
                    .duration_since(SystemTime::now())
                    .unwrap_or_default()
                    .as_secs();
                write!(
                    f,
                    "waiting: too many recent failures at this host; next try in {secs} s"
                )
            }
        }
    }
}

/// Delivers callbacks. Cheap to clone: clones share the HTTP connection pool
/// and the breakers.
///
/// ```no_run
/// # async fn example() -> peedy_callbacks::Result<()> {
/// use peedy_callbacks::{CallbackConfig, Deliverer, Delivery, Outcome, Part};
/// use std::path::PathBuf;
/// use std::sync::Arc;
///
/// let deliverer = Deliverer::new(CallbackConfig::default())?;
/// deliverer.check_url("https://shop.example/hooks/peedy")?; // at upload time
/// let parts: [Arc<dyn Part>; 2] = [
///     Arc::new(PathBuf::from("input.pdf")),
///     Arc::new(PathBuf::from("update.bin")),
/// ];
/// let outcome = deliverer
///     .deliver(&Delivery {
///         url: "https://shop.example/hooks/peedy",
///         webhook_id: "msg_2f7c…",
///         document_id: "doc_91ab…",
///         filename: "book.pdf",
///         parts: &parts,
///     })
///     .await;
/// match outcome {
///     Outcome::Delivered { .. } | Outcome::Gone => { /* done */ }
///     Outcome::Retry { retry_after, .. } => { /* backoff, at least retry_after */ }
///     Outcome::Permanent { .. } => { /* record the failure */ }
///     Outcome::BreakerOpen { until } => { /* run again at `until`, same attempt */ }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    timeout: Duration,
    policy: AddressPolicy,
    key: Option<SigningKey>,
    boundary_key: [u8; 16],
    breakers: Breakers,
}

impl Deliverer {
    /// A deliverer with its own HTTP client.
    ///
    /// The client follows no redirects (a redirect could lead anywhere, and
    /// re-POSTing a large body is not what a 3xx asks for), uses no proxy
    /// (`HTTP_PROXY` would otherwise be honoured, and the guard would check
    /// the proxy's address instead of the receiver's), and resolves names
    /// through [`GuardedResolver`].
    pub fn new(config: CallbackConfig) -> Result<Deliverer> {
        if config.timeout.is_zero() {
            return Err(Error::Config(
                "the callback timeout must be above zero".into(),
            ));
        }
        if config.breaker.failures > 0
            && (config.breaker.window.is_zero() || config.breaker.open_for.is_zero())
        {
            return Err(Error::Config(
                "the breaker's window and open period must be above zero".into(),
            ));
        }
        let key = config
            .secret
            .as_deref()
            .map(SigningKey::parse)
            .transpose()?;
        let policy = config.policy();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(policy)))
            .user_agent(config.user_agent.as_str())
            .build()
            .map_err(Error::Client)?;
        Ok(Deliverer {
            inner: Arc::new(Inner {
                client,
                timeout: config.timeout,
                policy,
                key,
                boundary_key: body::process_key(),
                // A trial may take the request timeout plus the time to read
                // the files for the signature.
                breakers: Breakers::new(config.breaker, config.timeout * 2),
            }),
        })
    }

    /// Validates a callback URL at upload time: `http` or `https`, a host, no
    /// user name or password, and — when the host is an IP literal — not a
    /// refused address. Host names are checked when connecting, on what they
    /// resolve to then. The error's text is a sentence for a 400's detail.
    pub fn check_url(&self, url: &str) -> Result<(), UrlError> {
        guard::check_url(url, self.inner.policy).map(drop)
    }

    /// Makes one delivery attempt of a stamped PDF.
    ///
    /// The body is `multipart/form-data` with the part `file` (named
    /// `filename`, `application/pdf`, the concatenation of `parts`) and the
    /// text part `id`. With a secret, the request carries Standard Webhooks
    /// headers: `webhook-id`, `webhook-timestamp` (Unix seconds) and
    /// `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
    /// over the exact bytes sent.
    ///
    /// Never fails: every way an attempt can end is an [`Outcome`].
    #[tracing::instrument(
        name = "callback",
        skip_all,
        fields(webhook_id = d.webhook_id, document_id = d.document_id)
    )]
    pub async fn deliver(&self, d: &Delivery<'_>) -> Outcome {
        let url = match guard::check_url(d.url, self.inner.policy) {
            Ok(url) => url,
            Err(e) => {
                return Outcome::Permanent {
                    reason: e.to_string(),
                    status: None,
                };
            }
        };
        let key = breaker_key(&url);
        let ticket = match self.inner.breakers.acquire(&key, Instant::now()) {
            Ok(ticket) => TicketGuard {
                breakers: &self.inner.breakers,
                ticket: Some(ticket),
            },
            Err(until) => {
                let outcome = Outcome::BreakerOpen {
                    until: to_system(until),
                };
                tracing::debug!(host = %key, "breaker open; not attempted");
                return outcome;
            }
        };
        let (outcome, health) = self.attempt(url, d).await;
        ticket.finish(health);
        tracing::debug!(host = %key, %outcome, "callback attempt");
        outcome
    }

    async fn attempt(&self, url: url::Url, d: &Delivery<'_>) -> (Outcome, Health) {
        let inner = &*self.inner;
        let boundary = body::boundary(&inner.boundary_key, d.webhook_id);
        let mut body = MultipartBody::new(boundary, d.filename, d.document_id, d.parts);
        let mut headers = HeaderMap::new();
        if let Err(e) = body.read_small_parts().await {
            return (read_failure(&e), Health::Unknown);
        }
        let prepared = match &inner.key {
            Some(key) => body
                .sign(key, d.webhook_id, SystemTime::now())
                .await
                .map(Some),
            None => body.measure().await.map(|()| None),
        };
        let signature = match prepared {
            Ok(signature) => signature,
            Err(e) => return (read_failure(&e), Health::Unknown),
        };
        if let Some(signature) = signature {
            let values = [
                ("webhook-id", d.webhook_id.to_owned()),
                ("webhook-timestamp", signature.timestamp),
                ("webhook-signature", signature.header),
            ];
            for (name, value) in values {
                match HeaderValue::try_from(value) {
                    Ok(value) => {
                        headers.insert(name, value);
                    }
                    Err(_) => {
                        let reason = format!("{name} is not a valid header value");
                        return (
                            Outcome::Permanent {
                                reason,
                                status: None,
                            },
                            Health::Unknown,
                        );
                    }
                }
            }
        }
        // The boundary is hex, so this always succeeds.
        if let Ok(content_type) = HeaderValue::try_from(body.content_type()) {
            headers.insert(header::CONTENT_TYPE, content_type);
        }
        // With an explicit length the body is sent as is, not chunked.
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));

        let request = inner
            .client
            .post(url)
            .headers(headers)
            .body(body.into_body());
        match request.send().await {
            Ok(response) => classify(response.status(), response.headers()),
            Err(e) => self.classify_error(&e),
        }
    }

    fn classify_error(&self, e: &reqwest::Error) -> (Outcome, Health) {
        if let Some(refused) = find_in_chain::<RefusedName>(e) {
            let outcome = Outcome::Permanent {
                reason: format!("callback refused: {refused}"),
                status: None,
            };
            return (outcome, Health::Unknown);
        }
        if let Some(read) = find_in_chain::<ReadError>(e) {
            return (read_failure(&read.0), Health::Unknown);
        }
        let reason = if e.is_timeout() {
            format!("no answer within {} s", self.inner.timeout.as_secs_f32())
        } else if e.is_connect() {
            format!("could not connect: {}", error_chain(e))
        } else {
            format!("the request failed: {}", error_chain(e))
        };
        let outcome = Outcome::Retry {
            reason,
            status: None,
            retry_after: None,
        };
        (outcome, Health::Down)
    }

    /// Each host's breaker that is not plainly closed: open, half-open, or
    /// closed with failures in the current window. Sorted by host.
    pub fn breaker_states(&self) -> Vec<(String, BreakerState)> {
        self.inner.breakers.states(Instant::now(), to_system)
    }
}

/// Gives the ticket back to the breaker when the attempt is over — also when
/// the attempt's future is dropped half-way, so an abandoned half-open trial
/// does not keep the host's breaker shut.
struct TicketGuard<'a> {
    breakers: &'a Breakers,
    ticket: Option<Ticket>,
}

impl TicketGuard<'_> {
    fn finish(mut self, health: Health) {
        if let Some(ticket) = self.ticket.take() {
            self.breakers.record(ticket, health, Instant::now());
        }
    }
}

impl Drop for TicketGuard<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.breakers
                .record(ticket, Health::Unknown, Instant::now());
        }
    }
}

/// The breaker's key: `host:port`, port defaulted by scheme.
fn breaker_key(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn to_system(at: Instant) -> SystemTime {
    SystemTime::now() + at.saturating_duration_since(Instant::now())
}

fn read_failure(e: &std::io::Error) -> Outcome {
    Outcome::Retry {
        reason: format!("reading the stamped PDF failed: {e}"),
        status: None,
        retry_after: None,
    }
}

/// The outcome of an answer. The response body is never read into the
/// reason: echoing what a receiver said would turn a refused-address bypass
/// into a way to read internal pages through `/status`.
fn classify(status: StatusCode, headers: &HeaderMap) -> (Outcome, Health) {
    let code = status.as_u16();
    let text = match status.canonical_reason() {
        Some(reason) => format!("HTTP {code} {reason}"),
        None => format!("HTTP {code}"),
    };
    let retry = |reason: String| {
        let outcome = Outcome::Retry {
            reason,
            status: Some(code),
            retry_after: headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
        };
        (outcome, Health::Down)
    };
    match code {
        200..=299 => (Outcome::Delivered { status: code }, Health::Up),
        410 => (Outcome::Gone, Health::Up),
        408 | 429 => retry(text),
        400..=499 => {
            let outcome = Outcome::Permanent {
                reason: format!("{text}; 4xx answers other than 408, 410 and 429 are not retried"),
                status: Some(code),
            };
            (outcome, Health::Up)
        }
        300..=399 => {
            let location = headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|l| format!(" to {}", truncate(l, 200)))
                .unwrap_or_default();
            retry(format!(
                "{text}, a redirect{location}; redirects are not followed, \
                 so callback_url must be the final URL"
            ))
        }
        _ => retry(text),
    }
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit strings saturate rather than fail.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

fn truncate(s: &str, max: usize) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    match clean.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &clean[..at]),
        None => clean,
    }
}

fn find_in_chain<'e, T: StdError + 'static>(e: &'e (dyn StdError + 'static)) -> Option<&'e T> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

/// `reqwest`'s own message is "error sending request for url (…)"; the
/// causes underneath say what went wrong.
fn error_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = e.source();
    while let Some(err) = current {
        let text = err.to_string();
        // hyper-util's wrapper ("client error (Connect)") says nothing the
        // next cause does not.
        if !text.starts_with("client error (") && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn statuses_map_to_outcomes() {
        let none = HeaderMap::new();
        let outcome = |code: u16| classify(StatusCode::from_u16(code).expect("valid"), &none);
        assert_eq!(outcome(200).0, Outcome::Delivered { status: 200 });
        assert_eq!(outcome(204).0, Outcome::Delivered { status: 204 });
        assert_eq!(outcome(410), (Outcome::Gone, Health::Up));
        for code in [408, 429, 500, 502, 503, 301, 302, 307] {
            let (o, h) = outcome(code);
            assert!(
                matches!(o, Outcome::Retry { status: Some(s), .. } if s == code),
                "{code}"
            );
            assert_eq!(h, Health::Down, "{code}");
        }
        for code in [400, 401, 403, 404, 413, 422] {
            let (o, h) = outcome(code);
            assert!(
                matches!(o, Outcome::Permanent { status: Some(s), .. } if s == code),
                "{code}"
            );
            assert_eq!(h, Health::Up, "{code}");
        }
    }

    #[test]
    fn breaker_keys_include_the_port() {
        let key = |u: &str| breaker_key(&url::Url::parse(u).expect("valid"));
        assert_eq!(key("https://Example.COM/x"), "example.com:443");
        assert_eq!(key("http://example.com/x"), "example.com:80");
        assert_eq!(key("http://10.0.0.1:8080/"), "10.0.0.1:8080");
        assert_eq!(key("http://[::1]:9/"), "[::1]:9");
    }

    #[test]
    fn truncation_strips_controls() {
        assert_eq!(truncate("a\r\nb", 10), "ab");
        assert_eq!(truncate("abcdef", 3), "abc…");
    }
}

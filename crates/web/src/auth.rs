//! Optional API tokens (DESIGN §7): when configured, every `/api` route
//! wants `Authorization: Bearer TOKEN` and answers 401 JSON with
//! `WWW-Authenticate: Bearer` otherwise.
//!
//! Left open on purpose: `/healthcheck` and `/readyz` (load balancers and
//! orchestrators probe them without credentials), the web page and its
//! static assets at `/` (they hold no data; the page asks for a token when
//! the API answers 401), and `POST /api/v1/dev/null` — the callback sink for
//! trying Peedy out. Peedy's own callbacks carry no `Authorization` header
//! (receivers check the Standard Webhooks signature instead), so a locked
//! `dev/null` would turn every walkthrough callback into a 401 retried for
//! hours; and it only logs the size of what it got, so leaving it open
//! exposes nothing.

use std::fmt;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::ApiError;

/// The accepted tokens, kept as SHA-256 digests: comparing digests of equal
/// length in constant time hides both the tokens and their lengths from
/// timing.
#[derive(Clone)]
pub struct ApiTokens {
    digests: Arc<[[u8; 32]]>,
}

impl fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiTokens({} tokens)", self.digests.len())
    }
}

impl ApiTokens {
    /// The set of `tokens`; `None` when there are none (the API is open).
    pub fn new<S: AsRef<str>>(tokens: impl IntoIterator<Item = S>) -> Option<Self> {
        let digests: Vec<[u8; 32]> = tokens
            .into_iter()
            .map(|t| Sha256::digest(t.as_ref().as_bytes()).into())
            .collect();
        (!digests.is_empty()).then(|| Self {
            digests: digests.into(),
        })
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Never true: an empty set is `None` (see [`ApiTokens::new`]).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `presented` is one of the tokens. Every token is compared,
    /// without stopping at a match, in constant time.
    pub fn accepts(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut ok = Choice::from(0);
        for known in self.digests.iter() {
            ok |= known.ct_eq(&digest);
        }
        bool::from(ok)
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (scheme
/// case-insensitive, RFC 6750).
fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Middleware: lets the request through when tokens are off or it carries
/// one of them; answers 401 otherwise.
pub async fn require_token(
    State(tokens): State<Option<ApiTokens>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(tokens) = tokens else {
        return next.run(req).await;
    };
    match bearer(&req) {
        Some(token) if tokens.accepts(token) => next.run(req).await,
        Some(_) => unauthorized(
            "invalid_token",
            "The API token is not valid",
            r#"Bearer realm="peedy", error="invalid_token""#,
        ),
        None => unauthorized(
            "unauthorized",
            "This API needs a token: send the header `Authorization: Bearer TOKEN`",
            r#"Bearer realm="peedy""#,
        ),
    }
}

fn unauthorized(code: &str, detail: &str, challenge: &'static str) -> Response {
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, code, detail).into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::ApiTokens;

    #[test]
    fn only_listed_tokens_are_accepted() {
        assert!(ApiTokens::new(Vec::<String>::new()).is_none());
        let tokens = ApiTokens::new(["alpha-1", "beta-2"]).unwrap();
        assert_eq!(tokens.len(), 2);
        assert!(tokens.accepts("alpha-1"));
        assert!(tokens.accepts("beta-2"));
        assert!(!tokens.accepts("alpha-"));
        assert!(!tokens.accepts("alpha-12"));
        assert!(!tokens.accepts(""));
        assert_eq!(format!("{tokens:?}"), "ApiTokens(2 tokens)");
    }
}

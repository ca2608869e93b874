//! Delivering stamped PDFs to callback URLs.
//!
//! A callback is `POST callback_url` as `multipart/form-data` with the parts
//! `file` (the stamped PDF) and `id` (the document id) — the original Peedy's
//! shape — signed with Standard Webhooks headers when a secret is configured.
//! [`Deliverer::deliver`] makes one attempt and says what it came to as an
//! [`Outcome`]; the job queue owns attempts, backoff and persistence.
//!
//! Three things stand between a delivery and the network:
//!
//! - the SSRF guard ([`guard`]): loopback, private, link-local and metadata
//!   addresses are refused, checked on the address actually connected to;
//! - a circuit breaker per host ([`breaker`]): after repeated failures the
//!   host is left alone for a while and deliveries wait without spending
//!   attempts;
//! - a timeout per attempt (15 s by default).
//!
//! Start with [`Deliverer::new`] and a [`CallbackConfig`]; call
//! [`Deliverer::check_url`] when a `callback_url` arrives, and
//! [`Deliverer::deliver`] from the callback job.
#![deny(missing_docs)]

mod body;
pub mod breaker;
mod deliver;
pub mod guard;

pub use body::{Part, PartStream};
pub use breaker::{BreakerConfig, BreakerState};
pub use deliver::{CallbackConfig, Deliverer, Delivery, Outcome};
pub use guard::{AddressClass, AddressPolicy, UrlError};

/// What can go wrong setting up callback delivery. (One attempt never fails:
/// it ends in an [`Outcome`].)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The signing secret cannot be used.
    #[error("the callback secret is not usable: {0}")]
    Secret(String),
    /// A setting is out of range.
    #[error("invalid callback configuration: {0}")]
    Config(String),
    /// The HTTP client could not be built (e.g. a `User-Agent` that is not a
    /// valid header value).
    #[error("could not set up the callback HTTP client")]
    Client(#[source] reqwest::Error),
    /// A callback URL was rejected.
    #[error(transparent)]
    Url(#[from] UrlError),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! Errors of the engine: one enum a caller can act on, and the spec's own.

use thiserror::Error;

/// A watermark spec that cannot be used.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The text is empty or only whitespace.
    #[error("the watermark text is empty")]
    EmptyText,
    /// The text is longer than [`crate::MAX_TEXT_CHARS`].
    #[error("the watermark text has {chars} characters; at most 500 are allowed")]
    TextTooLong {
        /// How many characters it had.
        chars: usize,
    },
    /// The text has a control character other than newline or tab.
    #[error("the watermark text contains the control character U+{:04X}", *.0 as u32)]
    ControlCharacter(char),
    /// Opacity outside 0–1.
    #[error("opacity must be between 0 and 1, got {0}")]
    Opacity(f32),
    /// Not a colour.
    #[error("not a colour: {0:?} (use #rrggbb)")]
    Color(String),
    /// Not a size.
    #[error("not a font size: {0:?} (use auto or points between 1 and 1000)")]
    Size(String),
    /// Not a rotation.
    #[error("not a rotation: {0:?} (use degrees between -360 and 360, or diagonal)")]
    Rotation(String),
    /// Not a position.
    #[error(
        "not a position: {0:?} (use an anchor such as center, top-left, bottom-right, optionally with :dx,dy)"
    )]
    Position(String),
    /// Not a layer.
    #[error("not a layer: {0:?} (use over or under)")]
    Layer(String),
    /// Not a page selection.
    #[error("not a page selection: {0:?} (use all, or a list like 1-3,5,last)")]
    Pages(String),
}

/// Why a PDF could not be stamped.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum StampError {
    /// The input does not start like a PDF and holds no PDF objects.
    #[error("not a PDF: {0}")]
    NotAPdf(String),
    /// The file is a PDF but too damaged to read, even after repair.
    #[error("the PDF is damaged beyond repair: {0}")]
    Damaged(String),
    /// The file is encrypted with a user password and none (or a wrong one)
    /// was given.
    #[error("the PDF is password-protected: {0}")]
    PasswordProtected(String),
    /// The file is encrypted with a scheme Peedy does not implement.
    #[error("the PDF is encrypted with an unsupported scheme: {0}")]
    UnsupportedEncryption(String),
    /// More pages than the configured limit.
    #[error("the PDF has {count} pages; the limit is {limit}")]
    TooManyPages {
        /// Pages found (or declared).
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// Decoding a stream would exceed the configured limit (a decompression
    /// bomb or a file too large to handle).
    #[error("decoding the PDF would need more than {limit} bytes (decompression limit)")]
    DecompressionLimit {
        /// The limit in bytes.
        limit: u64,
    },
    /// Nesting of arrays/dicts or of the page tree deeper than the limit.
    #[error("the PDF nests objects deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: u32,
    },
    /// The file is larger than the configured input limit.
    #[error("the PDF has {size} bytes; the limit is {limit}")]
    TooLarge {
        /// Input size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The document has no pages.
    #[error("the PDF has no pages")]
    NoPages,
    /// The page selection names a page that does not exist.
    #[error("page {page} does not exist (the document has {count})")]
    PageOutOfRange {
        /// The page asked for (1-based).
        page: u32,
        /// Pages in the document.
        count: u32,
    },
    /// The watermark spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The font cannot be used (not a TrueType/OpenType font, or it lacks
    /// glyphs for the text).
    #[error("font problem: {0}")]
    Font(String),
    /// The work took longer than the configured time limit.
    #[error("stamping took longer than the time limit of {limit_ms} ms")]
    TimeLimit {
        /// The limit.
        limit_ms: u64,
    },
}

impl StampError {
    /// A short stable code for APIs (`not_a_pdf`, `password_protected`, …).
    pub fn code(&self) -> &'static str {
        match self {
            StampError::NotAPdf(_) => "not_a_pdf",
            StampError::Damaged(_) => "damaged_pdf",
            StampError::PasswordProtected(_) => "password_protected",
            StampError::UnsupportedEncryption(_) => "unsupported_encryption",
            StampError::TooManyPages { .. } => "too_many_pages",
            StampError::DecompressionLimit { .. } => "decompression_limit",
            StampError::TooDeep { .. } => "too_deep",
            StampError::TooLarge { .. } => "too_large",
            StampError::NoPages => "no_pages",
            StampError::PageOutOfRange { .. } => "page_out_of_range",
            StampError::Spec(_) => "invalid_watermark",
            StampError::Font(_) => "font",
            StampError::TimeLimit { .. } => "time_limit",
        }
    }
}

/// Result with [`StampError`].
pub type Result<T, E = StampError> = std::result::Result<T, E>;

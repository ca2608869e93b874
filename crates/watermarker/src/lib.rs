//! Peedy's watermarking pipeline: accepting documents, the stamping and
//! callback jobs that process them, and the watermark specs they use.
#![deny(missing_docs)]

pub mod spec;

pub use spec::WatermarkSpec;

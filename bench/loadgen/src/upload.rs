//! The upload client: `POST /api/v1/documents`, multipart with the fields
//! `watermark` and `callback_url` and one `application/pdf` part per file.
//!
//! Every file is read once. A request body is a list of shared buffers —
//! the fields, each part's precomputed header, the file's bytes, the closing
//! boundary — streamed with an exact `Content-Length`, so no request copies
//! or concatenates the PDFs. Connections are kept alive in reqwest's pool.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;

pub struct Uploader {
    client: reqwest::Client,
    url: reqwest::Url,
    content_type: HeaderValue,
    /// The `watermark` and `callback_url` fields.
    fields: Bytes,
    /// Per distinct file: its part's header, and its bytes.
    parts: Vec<(Bytes, Bytes)>,
    /// `\r\n` after each file, then the closing boundary.
    closing: Bytes,
}

/// What one upload got back.
pub struct Uploaded {
    pub ids: Vec<String>,
    pub skipped: usize,
}

#[derive(Deserialize)]
struct Answer {
    documents: Vec<Document>,
    #[serde(default)]
    skipped: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Document {
    id: String,
}

impl Uploader {
    /// Reads the files (each distinct path once) and prepares the framing.
    /// Returns the uploader and, for each of `files` in order, the index of
    /// its part.
    pub fn new(
        base: &str,
        watermark: &str,
        callback_url: &str,
        files: &[PathBuf],
        clients: usize,
        timeout: Duration,
    ) -> Result<(Uploader, Vec<usize>)> {
        let url = reqwest::Url::parse(base)
            .and_then(|b| b.join("/api/v1/documents"))
            .with_context(|| format!("bad --base {base:?}"))?;
        let mut index: HashMap<&Path, usize> = HashMap::new();
        let mut data = Vec::new();
        let mut order = Vec::with_capacity(files.len());
        for path in files {
            let next = data.len();
            let i = *index.entry(path.as_path()).or_insert(next);
            if i == next {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                data.push((path.as_path(), Bytes::from(bytes)));
            }
            order.push(i);
        }

        let boundary = boundary(
            data.iter()
                .map(|(_, b)| b.as_ref())
                .chain([watermark.as_bytes(), callback_url.as_bytes()]),
        );
        let fields = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"watermark\"\r\n\r\n{watermark}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"callback_url\"\r\n\r\n{callback_url}\r\n"
        );
        let parts = data
            .into_iter()
            .map(|(path, bytes)| {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                let head = format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
                     Content-Type: application/pdf\r\n\r\n",
                    quote(&name)
                );
                (Bytes::from(head), bytes)
            })
            .collect();
        let content_type =
            HeaderValue::try_from(format!("multipart/form-data; boundary={boundary}"))?;

        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .tcp_nodelay(true)
            .timeout(timeout)
            .no_proxy()
            .build()
            .context("building the HTTP client")?;
        Ok((
            Uploader {
                client,
                url,
                content_type,
                fields: Bytes::from(fields),
                parts,
                closing: Bytes::from(format!("\r\n--{boundary}--\r\n")),
            },
            order,
        ))
    }

    /// Uploads the parts `batch` (indices from [`Uploader::new`]) in one
    /// request. A connection that fails is retried once, as a pooled
    /// keep-alive connection the server has just closed would.
    pub async fn upload(&self, batch: &[usize]) -> Result<Uploaded> {
        let mut retried = false;
        loop {
            match self.send(batch).await {
                Err(e) if !retried && (e.is_connect() || e.is_request()) && !e.is_timeout() => {
                    retried = true;
                }
                Err(e) => return Err(e).context("upload failed"),
                Ok(response) => return answer(response).await,
            }
        }
    }

    async fn send(&self, batch: &[usize]) -> reqwest::Result<reqwest::Response> {
        let mut chunks = Vec::with_capacity(2 + 3 * batch.len());
        chunks.push(self.fields.clone());
        for (k, &i) in batch.iter().enumerate() {
            if k > 0 {
                chunks.push(Bytes::from_static(b"\r\n"));
            }
            let (head, data) = &self.parts[i];
            chunks.push(head.clone());
            chunks.push(data.clone());
        }
        chunks.push(self.closing.clone());
        let len: usize = chunks.iter().map(Bytes::len).sum();
        let body = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
        self.client
            .post(self.url.clone())
            .header(CONTENT_TYPE, self.content_type.clone())
            .header(CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
    }
}

async fn answer(response: reqwest::Response) -> Result<Uploaded> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .with_context(|| format!("reading the upload's answer ({status})"))?;
    if !status.is_success() {
        bail!(
            "upload answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let answer: Answer = serde_json::from_slice(&body).with_context(|| {
        format!(
            "unexpected upload answer ({status}): {}",
            String::from_utf8_lossy(&body)
        )
    })?;
    Ok(Uploaded {
        ids: answer.documents.into_iter().map(|d| d.id).collect(),
        skipped: answer.skipped.len(),
    })
}

/// A multipart boundary that occurs in none of `contents`.
fn boundary<'a>(contents: impl Iterator<Item = &'a [u8]> + Clone) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    boundary_from(nanos ^ (u128::from(std::process::id()) << 64), contents)
}

fn boundary_from<'a>(
    mut candidate: u128,
    contents: impl Iterator<Item = &'a [u8]> + Clone,
) -> String {
    loop {
        let boundary = format!("peedy-loadgen-{candidate:032x}");
        if !contents.clone().any(|c| contains(c, boundary.as_bytes())) {
            return boundary;
        }
        candidate = candidate
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut from = 0;
    while let Some(at) = haystack[from..].iter().position(|&b| b == first) {
        let start = from + at + 1;
        if haystack[start..].starts_with(rest) {
            return true;
        }
        from = start;
    }
    false
}

/// A filename for a `Content-Disposition` parameter: `"`, CR and LF
/// percent-encoded, as browsers do.
pub(crate) fn quote(name: &str) -> String {
    name.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::{boundary_from, contains};

    #[test]
    fn finds_subslices() {
        assert!(contains(b"abcabd", b"abd"));
        assert!(!contains(b"abcab", b"abd"));
        assert!(contains(b"x", b""));
    }

    #[test]
    fn boundary_avoids_the_contents() {
        let first = boundary_from(7, std::iter::empty());
        let text = format!("xx{first}yy");
        let other = boundary_from(7, [text.as_bytes()].into_iter());
        assert_ne!(first, other);
        assert!(!text.contains(&other));
    }
}

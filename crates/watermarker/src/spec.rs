//! The watermark spec as the API receives it (query parameters or form
//! fields) and as it is stored: canonical JSON, one `watermarks` row per
//! distinct spec, like the original's `watermarks` table.

use peedy_stamp::{Color, Layer, PageSelection, Position, Rotation, Size, SpecError, Watermark};
use serde::{Deserialize, Serialize};

/// A watermark spec in its canonical, storable form: every field present,
/// every value normalized (so equal specs have equal JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatermarkSpec {
    /// The text (1–500 characters; `\n` makes lines).
    pub text: String,
    /// `auto` or points.
    pub size: String,
    /// Degrees counter-clockwise, or `diagonal`.
    pub rotation: String,
    /// Fill opacity 0–1.
    pub opacity: f32,
    /// `#rrggbb`.
    pub color: String,
    /// Anchor with optional offset, e.g. `center` or `bottom-right:-20,20`.
    pub position: String,
    /// The original's `--header`: a small line near the top.
    pub header: bool,
    /// `over` or `under`.
    pub layer: String,
    /// Page selection, e.g. `all` or `1-3,5,last`.
    pub pages: String,
}

/// The parameter names the API reads, besides `watermark` and `callback_url`.
pub const SPEC_FIELDS: [&str; 8] = [
    "size", "rotation", "opacity", "color", "position", "header", "layer", "pages",
];

impl WatermarkSpec {
    /// Builds a spec from request parameters: `get(name)` returns a query
    /// parameter or form field. `watermark` is the text (`text` is accepted
    /// too); every other field is optional.
    pub fn from_params(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<(Self, Watermark)>, SpecError> {
        let Some(text) = get("watermark").or_else(|| get("text")) else {
            return Ok(None);
        };
        let mut wm = Watermark::new(text)?;
        if let Some(v) = get("size").filter(|v| !v.trim().is_empty()) {
            wm = wm.with_size(v.parse::<Size>()?);
        }
        if let Some(v) = get("rotation").filter(|v| !v.trim().is_empty()) {
            wm = wm.with_rotation(v.parse::<Rotation>()?);
        }
        if let Some(v) = get("opacity").filter(|v| !v.trim().is_empty()) {
            let o: f32 = v.trim().parse().map_err(|_| SpecError::Opacity(f32::NAN))?;
            wm = wm.with_opacity(o)?;
        }
        if let Some(v) = get("color").filter(|v| !v.trim().is_empty()) {
            wm = wm.with_color(v.parse::<Color>()?);
        }
        if let Some(v) = get("position").filter(|v| !v.trim().is_empty()) {
            wm = wm.with_position(v.parse::<Position>()?);
        }
        if let Some(v) = get("header") {
            wm = wm.with_header(matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "on" | "yes"
            ));
        }
        if let Some(v) = get("layer").filter(|v| !v.trim().is_empty()) {
            wm = wm.with_layer(v.parse::<Layer>()?);
        }
        if let Some(v) = get("pages").filter(|v| !v.trim().is_empty()) {
            wm = wm.with_pages(v.parse::<PageSelection>()?);
        }
        Ok(Some((Self::of(&wm), wm)))
    }

    /// The canonical spec of a watermark.
    pub fn of(wm: &Watermark) -> Self {
        Self {
            text: wm.text().to_owned(),
            size: wm.size.to_string(),
            rotation: wm.rotation.to_string(),
            opacity: wm.opacity,
            color: wm.color.to_string(),
            position: wm.position.to_string(),
            header: wm.header,
            layer: wm.layer.to_string(),
            pages: wm.pages.to_string(),
        }
    }

    /// The engine's watermark for this spec.
    pub fn watermark(&self) -> Result<Watermark, SpecError> {
        Ok(Watermark::new(self.text.clone())?
            .with_size(self.size.parse()?)
            .with_rotation(self.rotation.parse()?)
            .with_opacity(self.opacity)?
            .with_color(self.color.parse()?)
            .with_position(self.position.parse()?)
            .with_header(self.header)
            .with_layer(self.layer.parse()?)
            .with_pages(self.pages.parse()?))
    }

    /// Canonical JSON (field order fixed by the struct).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses stored JSON.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn params(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn equal_specs_have_equal_json() {
        let (a, _) = WatermarkSpec::from_params(params(&[("watermark", "Ricky Bobby")]))
            .unwrap()
            .unwrap();
        let (b, _) = WatermarkSpec::from_params(params(&[
            ("watermark", "Ricky Bobby"),
            ("color", "#000"),
            ("rotation", "50"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(a.to_json(), b.to_json());
        let back = WatermarkSpec::from_json(&a.to_json()).unwrap();
        assert_eq!(
            back.watermark().unwrap(),
            WatermarkSpec::of(&back.watermark().unwrap())
                .watermark()
                .unwrap()
        );
    }

    #[test]
    fn fields_are_validated() {
        assert!(WatermarkSpec::from_params(params(&[])).unwrap().is_none());
        assert!(
            WatermarkSpec::from_params(params(&[("watermark", "x"), ("color", "nope")])).is_err()
        );
        assert!(
            WatermarkSpec::from_params(params(&[("watermark", "x"), ("opacity", "2")])).is_err()
        );
        let (s, wm) = WatermarkSpec::from_params(params(&[
            ("watermark", "x"),
            ("header", "true"),
            ("pages", "1-2"),
        ]))
        .unwrap()
        .unwrap();
        assert!(s.header && wm.header);
        assert_eq!(s.pages, "1-2");
    }
}

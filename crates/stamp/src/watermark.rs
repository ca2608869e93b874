//! The watermark spec: what to stamp and how it looks (DESIGN §3).
//!
//! Build one with [`Watermark::new`] and the `with_*` methods; every field
//! defaults to the original Peedy's look (Helvetica, rotated 50°, fill opacity
//! 0.2, centred, size derived from the page and the text length).
//!
//! ```
//! use peedy_stamp::{Watermark, Rotation};
//! let wm = Watermark::new("Ricky Bobby").unwrap().with_rotation(Rotation::Diagonal);
//! assert_eq!(wm.text(), "Ricky Bobby");
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::SpecError;

/// Longest watermark text accepted, in Unicode scalar values.
pub const MAX_TEXT_CHARS: usize = 500;

/// A validated watermark spec. Cheap to clone; hashable, so callers can use it
/// as a cache key for prepared stamp resources.
#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    text: String,
    /// Font size.
    pub size: Size,
    /// Rotation of the text.
    pub rotation: Rotation,
    /// Fill opacity, 0–1.
    pub opacity: f32,
    /// Fill colour.
    pub color: Color,
    /// Where on the page the text's centre goes.
    pub position: Position,
    /// Also draw a small unrotated line of the text near the top of the page.
    pub header: bool,
    /// Over or under the page content.
    pub layer: Layer,
    /// Which pages get the watermark.
    pub pages: PageSelection,
}

impl Watermark {
    /// A watermark with the given text and the original's defaults.
    ///
    /// The text must have 1–500 characters and some visible character; `\n`
    /// separates lines (`\r\n` is accepted too).
    pub fn new(text: impl Into<String>) -> Result<Self, SpecError> {
        let text: String = text.into().replace("\r\n", "\n");
        let chars = text.chars().count();
        if chars == 0 || text.chars().all(char::is_whitespace) {
            return Err(SpecError::EmptyText);
        }
        if chars > MAX_TEXT_CHARS {
            return Err(SpecError::TextTooLong { chars });
        }
        if let Some(c) = text
            .chars()
            .find(|c| c.is_control() && *c != '\n' && *c != '\t')
        {
            return Err(SpecError::ControlCharacter(c));
        }
        Ok(Self {
            text,
            size: Size::Auto,
            rotation: Rotation::default(),
            opacity: DEFAULT_OPACITY,
            color: Color::BLACK,
            position: Position::default(),
            header: false,
            layer: Layer::Over,
            pages: PageSelection::All,
        })
    }

    /// The text to stamp.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text's lines (split at `\n`).
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.split('\n')
    }

    /// Sets the font size.
    pub fn with_size(mut self, size: Size) -> Self {
        self.size = size;
        self
    }

    /// Sets the rotation.
    pub fn with_rotation(mut self, rotation: Rotation) -> Self {
        self.rotation = rotation;
        self
    }

    /// Sets the fill opacity; fails outside 0–1.
    pub fn with_opacity(mut self, opacity: f32) -> Result<Self, SpecError> {
        if !(0.0..=1.0).contains(&opacity) || opacity.is_nan() {
            return Err(SpecError::Opacity(opacity));
        }
        self.opacity = opacity;
        Ok(self)
    }

    /// Sets the colour.
    pub fn with_color(mut self, color: Color) -> Self {
        self.color = color;
        self
    }

    /// Sets the position.
    pub fn with_position(mut self, position: Position) -> Self {
        self.position = position;
        self
    }

    /// Turns the header line on or off.
    pub fn with_header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// Sets the layer.
    pub fn with_layer(mut self, layer: Layer) -> Self {
        self.layer = layer;
        self
    }

    /// Sets the page selection.
    pub fn with_pages(mut self, pages: PageSelection) -> Self {
        self.pages = pages;
        self
    }
}

/// The original stamp's fill opacity.
pub const DEFAULT_OPACITY: f32 = 0.2;

/// Font size of the watermark text.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Size {
    /// Derived from the page size and the text length like the original stamp
    /// script (`height / len * 1.1 * height / width`), shrunk when needed so
    /// the text never runs off the visible page.
    #[default]
    Auto,
    /// A fixed size in points (still shrunk if it would run off the page).
    Points(f32),
}

impl FromStr for Size {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Size::Auto);
        }
        let pt = s.strip_suffix("pt").unwrap_or(s).trim();
        match pt.parse::<f32>() {
            Ok(v) if v.is_finite() && (1.0..=1000.0).contains(&v) => Ok(Size::Points(v)),
            _ => Err(SpecError::Size(s.to_owned())),
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Size::Auto => f.write_str("auto"),
            Size::Points(v) => write!(f, "{v}"),
        }
    }
}

/// Rotation of the watermark text, as the reader sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rotation {
    /// Degrees counter-clockwise (the PDF convention; 90 reads bottom to top).
    Degrees(f32),
    /// Follows the diagonal of the visible page, from bottom-left to top-right.
    Diagonal,
}

/// The original stamp's rotation: 50°.
pub const DEFAULT_ROTATION_DEGREES: f32 = 50.0;

impl Default for Rotation {
    fn default() -> Self {
        Rotation::Degrees(DEFAULT_ROTATION_DEGREES)
    }
}

impl FromStr for Rotation {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("diagonal") {
            return Ok(Rotation::Diagonal);
        }
        let deg = s.strip_suffix("deg").unwrap_or(s).trim();
        match deg.parse::<f32>() {
            Ok(v) if v.is_finite() && (-360.0..=360.0).contains(&v) => Ok(Rotation::Degrees(v)),
            _ => Err(SpecError::Rotation(s.to_owned())),
        }
    }
}

impl fmt::Display for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rotation::Degrees(v) => write!(f, "{v}"),
            Rotation::Diagonal => f.write_str("diagonal"),
        }
    }
}

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Color {
    /// Red, 0–255.
    pub r: u8,
    /// Green, 0–255.
    pub g: u8,
    /// Blue, 0–255.
    pub b: u8,
}

impl Color {
    /// Black, the original's colour.
    pub const BLACK: Color = Color { r: 0, g: 0, b: 0 };
}

impl FromStr for Color {
    type Err = SpecError;
    /// Parses `#rrggbb`, `rrggbb`, `#rgb` or a few names (black, red, …).
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let t = s.trim();
        let named = match t.to_ascii_lowercase().as_str() {
            "black" => Some("000000"),
            "white" => Some("ffffff"),
            "red" => Some("ff0000"),
            "green" => Some("008000"),
            "blue" => Some("0000ff"),
            "gray" | "grey" => Some("808080"),
            _ => None,
        };
        let hex = named.unwrap_or_else(|| t.strip_prefix('#').unwrap_or(t));
        let err = || SpecError::Color(s.to_owned());
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        let digit = |i: usize, n: usize| u8::from_str_radix(&hex[i..i + n], 16).map_err(|_| err());
        match hex.len() {
            6 => Ok(Color {
                r: digit(0, 2)?,
                g: digit(2, 2)?,
                b: digit(4, 2)?,
            }),
            3 => Ok(Color {
                r: digit(0, 1)? * 17,
                g: digit(1, 1)? * 17,
                b: digit(2, 1)? * 17,
            }),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }
}

/// One of the nine anchor points of the visible page area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Anchor {
    /// Top left corner.
    TopLeft,
    /// Middle of the top edge.
    Top,
    /// Top right corner.
    TopRight,
    /// Middle of the left edge.
    Left,
    /// The centre (default).
    #[default]
    Center,
    /// Middle of the right edge.
    Right,
    /// Bottom left corner.
    BottomLeft,
    /// Middle of the bottom edge.
    Bottom,
    /// Bottom right corner.
    BottomRight,
}

impl Anchor {
    /// All anchors with their names, for parsing and help texts.
    pub const ALL: [(&'static str, Anchor); 9] = [
        ("top-left", Anchor::TopLeft),
        ("top", Anchor::Top),
        ("top-right", Anchor::TopRight),
        ("left", Anchor::Left),
        ("center", Anchor::Center),
        ("right", Anchor::Right),
        ("bottom-left", Anchor::BottomLeft),
        ("bottom", Anchor::Bottom),
        ("bottom-right", Anchor::BottomRight),
    ];

    /// Horizontal and vertical fraction of the visible area (0 = left/bottom).
    pub fn fractions(self) -> (f32, f32) {
        match self {
            Anchor::TopLeft => (0.0, 1.0),
            Anchor::Top => (0.5, 1.0),
            Anchor::TopRight => (1.0, 1.0),
            Anchor::Left => (0.0, 0.5),
            Anchor::Center => (0.5, 0.5),
            Anchor::Right => (1.0, 0.5),
            Anchor::BottomLeft => (0.0, 0.0),
            Anchor::Bottom => (0.5, 0.0),
            Anchor::BottomRight => (1.0, 0.0),
        }
    }
}

impl FromStr for Anchor {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let norm = s.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        let norm = if norm == "centre" {
            "center".to_owned()
        } else {
            norm
        };
        Anchor::ALL
            .iter()
            .find(|(name, _)| *name == norm)
            .map(|(_, a)| *a)
            .ok_or_else(|| SpecError::Position(s.to_owned()))
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Anchor::ALL
            .iter()
            .find(|(_, a)| a == self)
            .map_or("center", |(n, _)| n);
        f.write_str(name)
    }
}

/// Where the watermark goes: an anchor of the visible page plus an offset in
/// points (x to the reader's right, y up). With a corner or edge anchor the
/// text is kept inside the page, touching that edge.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Position {
    /// The anchor.
    pub anchor: Anchor,
    /// Offset to the right, in points.
    pub dx: f32,
    /// Offset upwards, in points.
    pub dy: f32,
}

impl FromStr for Position {
    type Err = SpecError;
    /// Parses `ANCHOR` or `ANCHOR:DX,DY`, e.g. `bottom-right:-20,20`.
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let (anchor, offset) = match s.split_once(':') {
            Some((a, o)) => (a, Some(o)),
            None => (s, None),
        };
        let anchor = anchor.parse()?;
        let (dx, dy) = match offset {
            None => (0.0, 0.0),
            Some(o) => {
                let err = || SpecError::Position(s.to_owned());
                let (x, y) = o.split_once(',').ok_or_else(err)?;
                let x: f32 = x.trim().parse().map_err(|_| err())?;
                let y: f32 = y.trim().parse().map_err(|_| err())?;
                if !x.is_finite() || !y.is_finite() || x.abs() > 14_400.0 || y.abs() > 14_400.0 {
                    return Err(err());
                }
                (x, y)
            }
        };
        Ok(Position { anchor, dx, dy })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dx == 0.0 && self.dy == 0.0 {
            write!(f, "{}", self.anchor)
        } else {
            write!(f, "{}:{},{}", self.anchor, self.dx, self.dy)
        }
    }
}

/// Whether the watermark is drawn over or under the page content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layer {
    /// Over the content (default; visible on scanned pages).
    #[default]
    Over,
    /// Under the content (hidden by opaque content such as scans).
    Under,
}

impl FromStr for Layer {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "over" | "foreground" => Ok(Layer::Over),
            "under" | "background" => Ok(Layer::Under),
            _ => Err(SpecError::Layer(s.to_owned())),
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Over => "over",
            Layer::Under => "under",
        })
    }
}

/// Which pages get the watermark: `all`, or a list like `1-3,5,last`,
/// `2-` (to the end), `last-1` (second to last).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PageSelection {
    /// Every page.
    #[default]
    All,
    /// The listed ranges (1-based, inclusive).
    Ranges(Vec<(PageRef, PageRef)>),
}

/// A page number in a selection, counted from the start or from the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRef {
    /// 1-based page number.
    Number(u32),
    /// `last` minus this many pages.
    FromLast(u32),
}

impl PageRef {
    fn resolve(self, count: u32) -> u32 {
        match self {
            PageRef::Number(n) => n,
            PageRef::FromLast(k) => count.saturating_sub(k),
        }
    }
}

impl PageSelection {
    /// Whether page `index` (0-based) of a document with `count` pages is
    /// selected.
    pub fn contains(&self, index: u32, count: u32) -> bool {
        match self {
            PageSelection::All => true,
            PageSelection::Ranges(ranges) => {
                let n = index + 1;
                ranges
                    .iter()
                    .any(|(a, b)| (a.resolve(count)..=b.resolve(count)).contains(&n))
            }
        }
    }

    /// Number pages in the selection that do not exist in a document with
    /// `count` pages, e.g. `9` in a 4-page document (the first one found).
    pub fn first_missing(&self, count: u32) -> Option<u32> {
        match self {
            PageSelection::All => None,
            PageSelection::Ranges(ranges) => ranges
                .iter()
                .flat_map(|(a, b)| [a, b])
                .filter_map(|r| match r {
                    PageRef::Number(n) if *n > count => Some(*n),
                    _ => None,
                })
                .min(),
        }
    }
}

impl FromStr for PageSelection {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let t = s.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("all") {
            return Ok(PageSelection::All);
        }
        let err = || SpecError::Pages(s.to_owned());
        let one = |p: &str| -> Result<PageRef, SpecError> {
            let p = p.trim().to_ascii_lowercase();
            if p == "last" {
                return Ok(PageRef::FromLast(0));
            }
            if let Some(k) = p.strip_prefix("last-") {
                return k.trim().parse().map(PageRef::FromLast).map_err(|_| err());
            }
            match p.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(PageRef::Number(n)),
                _ => Err(err()),
            }
        };
        let mut ranges = Vec::new();
        for part in t.split(',') {
            let part = part.trim();
            // A range separator is a '-' that is not part of "last-N".
            let split = part
                .char_indices()
                .filter(|&(i, c)| c == '-' && !part[..i].trim().eq_ignore_ascii_case("last"))
                .map(|(i, _)| i)
                .next();
            let range = match split {
                None => {
                    let p = one(part)?;
                    (p, p)
                }
                Some(i) => {
                    let (a, b) = (&part[..i], &part[i + 1..]);
                    let a = one(a)?;
                    let b = if b.trim().is_empty() {
                        PageRef::FromLast(0)
                    } else {
                        one(b)?
                    };
                    (a, b)
                }
            };
            ranges.push(range);
        }
        if ranges.len() > 10_000 {
            return Err(err());
        }
        Ok(PageSelection::Ranges(ranges))
    }
}

impl fmt::Display for PageSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one = |r: &PageRef| match r {
            PageRef::Number(n) => n.to_string(),
            PageRef::FromLast(0) => "last".to_owned(),
            PageRef::FromLast(k) => format!("last-{k}"),
        };
        match self {
            PageSelection::All => f.write_str("all"),
            PageSelection::Ranges(r) => {
                let parts: Vec<String> = r
                    .iter()
                    .map(|(a, b)| {
                        if a == b {
                            one(a)
                        } else {
                            format!("{}-{}", one(a), one(b))
                        }
                    })
                    .collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_validated() {
        assert_eq!(Watermark::new(""), Err(SpecError::EmptyText));
        assert_eq!(Watermark::new("  \n "), Err(SpecError::EmptyText));
        assert_eq!(
            Watermark::new("x".repeat(501)),
            Err(SpecError::TextTooLong { chars: 501 })
        );
        assert!(Watermark::new("é".repeat(500)).is_ok());
        assert_eq!(
            Watermark::new("a\u{7}b"),
            Err(SpecError::ControlCharacter('\u{7}'))
        );
        let wm = Watermark::new("a\r\nb").unwrap();
        assert_eq!(wm.lines().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn defaults_are_the_originals_look() {
        let wm = Watermark::new("Ricky Bobby").unwrap();
        assert_eq!(wm.rotation, Rotation::Degrees(50.0));
        assert_eq!(wm.opacity, 0.2);
        assert_eq!(wm.color, Color::BLACK);
        assert_eq!(wm.size, Size::Auto);
        assert_eq!(wm.layer, Layer::Over);
        assert!(!wm.header);
    }

    #[test]
    fn colors_parse() {
        assert_eq!(
            "#ff8000".parse::<Color>().unwrap(),
            Color {
                r: 255,
                g: 128,
                b: 0
            }
        );
        assert_eq!(
            "f80".parse::<Color>().unwrap(),
            Color {
                r: 255,
                g: 136,
                b: 0
            }
        );
        assert_eq!(
            "red".parse::<Color>().unwrap(),
            Color { r: 255, g: 0, b: 0 }
        );
        assert!("#ff80".parse::<Color>().is_err());
        assert!("zzzzzz".parse::<Color>().is_err());
        assert!("#é0000".parse::<Color>().is_err());
        assert_eq!(Color { r: 1, g: 2, b: 255 }.to_string(), "#0102ff");
    }

    #[test]
    fn pages_parse_and_select() {
        let sel: PageSelection = "1-3,5,last".parse().unwrap();
        let picked: Vec<u32> = (0..10).filter(|&i| sel.contains(i, 10)).collect();
        assert_eq!(picked, [0, 1, 2, 4, 9]);
        let sel: PageSelection = "8-".parse().unwrap();
        assert_eq!((0..10).filter(|&i| sel.contains(i, 10)).count(), 3);
        let sel: PageSelection = "last-1-last".parse().unwrap();
        assert_eq!(
            (0..10).filter(|&i| sel.contains(i, 10)).collect::<Vec<_>>(),
            [8, 9]
        );
        assert_eq!("all".parse::<PageSelection>().unwrap(), PageSelection::All);
        assert!("0".parse::<PageSelection>().is_err());
        assert!("a-b".parse::<PageSelection>().is_err());
        assert_eq!(
            "1-3,9".parse::<PageSelection>().unwrap().first_missing(4),
            Some(9)
        );
        assert_eq!(
            "1-3,5,last".parse::<PageSelection>().unwrap().to_string(),
            "1-3,5,last"
        );
    }

    #[test]
    fn positions_parse() {
        let p: Position = "bottom-right:-20,20".parse().unwrap();
        assert_eq!(
            p,
            Position {
                anchor: Anchor::BottomRight,
                dx: -20.0,
                dy: 20.0
            }
        );
        assert_eq!("centre".parse::<Position>().unwrap().anchor, Anchor::Center);
        assert!("middle".parse::<Position>().is_err());
        assert!("top:1".parse::<Position>().is_err());
        assert_eq!(p.to_string(), "bottom-right:-20,20");
    }

    #[test]
    fn sizes_and_rotations_parse() {
        assert_eq!("auto".parse::<Size>().unwrap(), Size::Auto);
        assert_eq!("36pt".parse::<Size>().unwrap(), Size::Points(36.0));
        assert!("0".parse::<Size>().is_err());
        assert!("NaN".parse::<Size>().is_err());
        assert_eq!("diagonal".parse::<Rotation>().unwrap(), Rotation::Diagonal);
        assert_eq!("-45".parse::<Rotation>().unwrap(), Rotation::Degrees(-45.0));
        assert!("inf".parse::<Rotation>().is_err());
    }
}

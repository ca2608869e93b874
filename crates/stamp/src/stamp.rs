//! The stamping pipeline: read the page tree, lay out the watermark for each
//! page's visible area, and write the incremental update.

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::error::{Result, StampError};
use crate::pdf::doc::{Document, Loaded, Source};
use crate::pdf::object::{Dict, Object, Ref};
use crate::pdf::pages::{self, Page, ResourcesFrom};
use crate::pdf::update;
use crate::pdf::write::{Body, Buf, NewObject, push_name, push_num, push_object};
use crate::text::{FontData, PreparedText};
use crate::watermark::{Layer, Rotation, Size, Watermark};
use std::fmt::Write as _;

/// Safety limits for untrusted input. Every one is a typed error when hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest input accepted, in bytes.
    pub max_input_bytes: u64,
    /// Most pages accepted.
    pub max_pages: u32,
    /// Most bytes any single decoded stream (object stream, xref stream) may
    /// expand to; guards against decompression bombs.
    pub max_decoded_bytes: u64,
    /// Deepest nesting of arrays/dictionaries and of the page tree.
    pub max_depth: u32,
    /// Wall-clock budget for one document, checked between pages.
    pub time_limit: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 4 << 30,
            max_pages: 100_000,
            max_decoded_bytes: 256 << 20,
            max_depth: 64,
            time_limit: None,
        }
    }
}

/// How to open and stamp documents, besides the watermark itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Password for encrypted files (user or owner password).
    pub password: Option<String>,
    /// A TrueType/OpenType font to draw the text with instead of the defaults.
    pub font: Option<FontData>,
    /// Safety limits.
    pub limits: Limits,
}

/// What happened to one document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Pages in the document.
    pub pages: u32,
    /// Pages that got the watermark.
    pub stamped_pages: u32,
    /// The input had to be repaired (so the output is a full rewrite).
    pub repaired: bool,
    /// The input was encrypted (and the output stays encrypted).
    pub encrypted: bool,
    /// The text is drawn with an embedded font subset (not Helvetica).
    pub embedded_font: bool,
}

/// A stamped document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamped {
    /// The output is the input's bytes followed by `update`.
    Appended {
        /// The incremental update to append to the original bytes.
        update: Vec<u8>,
        /// What was done.
        report: Report,
    },
    /// The output is `bytes` alone (the input had to be rewritten).
    Rewritten {
        /// The whole output file.
        bytes: Vec<u8>,
        /// What was done.
        report: Report,
    },
}

impl Stamped {
    /// What was done.
    pub fn report(&self) -> &Report {
        match self {
            Stamped::Appended { report, .. } | Stamped::Rewritten { report, .. } => report,
        }
    }

    /// Length of the whole output for this input.
    pub fn output_len(&self, input: &[u8]) -> usize {
        match self {
            Stamped::Appended { update, .. } => input.len() + update.len(),
            Stamped::Rewritten { bytes, .. } => bytes.len(),
        }
    }

    /// Writes the whole output: the input then the update, or the rewrite.
    pub fn write_to(&self, input: &[u8], mut w: impl Write) -> io::Result<()> {
        match self {
            Stamped::Appended { update, .. } => {
                w.write_all(input)?;
                w.write_all(update)
            }
            Stamped::Rewritten { bytes, .. } => w.write_all(bytes),
        }
    }

    /// The whole output in one buffer.
    pub fn to_vec(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.output_len(input));
        match self {
            Stamped::Appended { update, .. } => {
                out.extend_from_slice(input);
                out.extend_from_slice(update);
            }
            Stamped::Rewritten { bytes, .. } => out.extend_from_slice(bytes),
        }
        out
    }
}

/// A watermark prepared once (text shaped, font chosen) and applied to any
/// number of documents. Cheap to share between threads.
pub struct Stamper {
    watermark: Watermark,
    options: Options,
    text: PreparedText,
}

impl std::fmt::Debug for Stamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stamper")
            .field("watermark", &self.watermark)
            .finish_non_exhaustive()
    }
}

impl Stamper {
    /// Prepares `watermark`; fails when the font cannot draw the text.
    pub fn new(watermark: Watermark, options: Options) -> Result<Self> {
        let text = PreparedText::new(watermark.lines(), options.font.as_ref())?;
        Ok(Self {
            watermark,
            options,
            text,
        })
    }

    /// The watermark this stamper applies.
    pub fn watermark(&self) -> &Watermark {
        &self.watermark
    }

    /// Stamps one document.
    pub fn stamp(&self, input: &[u8]) -> Result<Stamped> {
        let started = Instant::now();
        let doc = Document::open(
            input,
            self.options.password.as_deref(),
            &self.options.limits,
        )?;
        let tree = pages::pages(&doc, started)?;
        let pages = &tree.pages;
        let count = u32::try_from(pages.len()).unwrap_or(u32::MAX);
        if let Some(page) = self.watermark.pages.first_missing(count) {
            return Err(StampError::PageOutOfRange { page, count });
        }
        let mut b = UpdateBuilder::new(&doc, &self.text, &self.watermark);
        b.parent = tree.rebuilt_root;
        // Resources objects used by one stamped page only are inlined into
        // that page: one object fewer each in the update.
        for (i, page) in pages.iter().enumerate() {
            if self.watermark.pages.contains(i as u32, count)
                && let ResourcesFrom::Indirect(r) = page.resources
            {
                *b.resource_users.entry(r).or_insert(0) += 1;
            }
        }
        // Read everything the pages need before numbering new objects, so
        // they are numbered above every reference the file makes.
        let mut prepared = Vec::with_capacity(pages.len());
        for (i, page) in pages.iter().enumerate() {
            prepared.push(if self.watermark.pages.contains(i as u32, count) {
                Some(b.prepare(page)?)
            } else {
                None
            });
        }
        b.next_id = doc.size().max(1);
        let mut stamped = 0;
        for ((i, page), prep) in pages.iter().enumerate().zip(prepared) {
            if let Some(t) = self.options.limits.time_limit
                && i % 64 == 0
                && started.elapsed() > t
            {
                return Err(StampError::TimeLimit {
                    limit_ms: t.as_millis() as u64,
                });
            }
            let Some(prep) = prep else {
                b.reattach_page(page);
                continue;
            };
            b.stamp_page(page, prep)?;
            stamped += 1;
        }
        let report = Report {
            pages: count,
            stamped_pages: stamped,
            repaired: doc.repaired(),
            encrypted: doc.crypt().is_some(),
            embedded_font: self.text.embedded(),
        };
        if let Some(node) = tree.rebuilt_root {
            b.write_page_tree(node, pages);
        }
        let update = update::write_update(&doc, b.objects);
        Ok(Stamped::Appended { update, report })
    }
}

/// Stamps `input` with `watermark` and default options.
pub fn stamp(input: &[u8], watermark: &Watermark) -> Result<Stamped> {
    Stamper::new(watermark.clone(), Options::default())?.stamp(input)
}

/// The size the form XObject's text is drawn at; pages scale it.
const REF_SIZE: f32 = 100.0;
/// Fraction of the visible page the rotated text may span.
const FIT: f32 = 0.9;
/// The original header's font size and distance from the top.
const HEADER_SIZE: f32 = 25.0;
const HEADER_TOP: f32 = 100.0;

/// Collects the update's objects while pages are stamped.
struct UpdateBuilder<'d, 'a> {
    doc: &'d Document<'a>,
    text: &'d PreparedText,
    wm: &'d Watermark,
    next_id: u32,
    objects: Vec<NewObject>,
    /// The form XObject that draws the text block centred on its origin.
    form: Option<(u32, Rect)>,
    /// `q` stream shared by every page.
    open_q: Option<u32>,
    /// Suffix content streams by their bytes (pages of one geometry share).
    suffixes: HashMap<Vec<u8>, u32>,
    /// New resources objects by (where the originals are, name used).
    resources: HashMap<(ResourcesFrom, Vec<u8>), u32>,
    /// When the page tree is rebuilt: the new `/Pages` node every page's
    /// `/Parent` must name.
    parent: Option<Ref>,
    /// How many stamped pages use each indirect resources dictionary.
    resource_users: HashMap<Ref, u32>,
}

/// What a page needs that was read before new objects were numbered.
struct Prepared {
    name: Vec<u8>,
    contents: Vec<Object>,
}

/// The text block's box at `REF_SIZE`, centred on the origin.
#[derive(Debug, Clone, Copy)]
struct Rect {
    w: f32,
    h: f32,
}

impl<'d, 'a> UpdateBuilder<'d, 'a> {
    fn new(doc: &'d Document<'a>, text: &'d PreparedText, wm: &'d Watermark) -> Self {
        Self {
            doc,
            text,
            wm,
            next_id: doc.size().max(1),
            objects: Vec::new(),
            form: None,
            open_q: None,
            suffixes: HashMap::new(),
            resources: HashMap::new(),
            parent: None,
            resource_users: HashMap::new(),
        }
    }

    /// Writes the rebuilt `/Pages` node holding `pages` (PDF 1.7 §7.7.3.2).
    fn write_page_tree(&mut self, node: Ref, pages: &[Page]) {
        let mut body = b"<</Type/Pages/Kids[".to_vec();
        for (i, p) in pages.iter().enumerate() {
            let _ = write!(
                Buf(&mut body),
                "{}{} {} R",
                if i > 0 { " " } else { "" },
                p.r.num,
                p.r.generation
            );
        }
        let _ = write!(Buf(&mut body), "]/Count {}>>", pages.len());
        self.objects.push(NewObject {
            id: node.num,
            generation: node.generation,
            body: Body::Direct(body),
        });
    }

    /// For a rebuilt tree: rewrites an unstamped page so its `/Parent` is the
    /// new node. Nothing to do otherwise.
    fn reattach_page(&mut self, page: &Page) {
        let Some(parent) = self.parent else { return };
        let mut body = b"<<".to_vec();
        self.copy_entries(&mut body, &page.dict, &page.source, page.r, &[b"Parent"]);
        self.push_inherited(&mut body, page, &[]);
        let _ = write!(
            Buf(&mut body),
            "/Parent {} {} R>>",
            parent.num,
            parent.generation
        );
        self.objects.push(NewObject {
            id: page.r.num,
            generation: page.r.generation,
            body: Body::Direct(body),
        });
    }

    fn alloc(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        id
    }

    /// Reads what stamping `page` needs: a free resource name and the
    /// existing content streams.
    fn prepare(&self, page: &Page) -> Result<Prepared> {
        Ok(Prepared {
            name: self.free_name(page.resources_dict.as_ref())?,
            contents: self.contents(page)?,
        })
    }

    /// The watermark form (written once per document).
    fn form(&mut self) -> (u32, Rect) {
        if let Some(f) = self.form {
            return f;
        }
        let mut font_objects = Vec::new();
        let mut next = self.next_id;
        let font = self.text.write_font(
            &mut || {
                let id = next;
                next = next.saturating_add(1);
                id
            },
            &mut font_objects,
        );
        self.next_id = next;
        self.objects.extend(font_objects);

        let t = self.text;
        let n = t.line_count();
        let max_w = (0..n).map(|i| t.line_width(i)).fold(0.0f32, f32::max);
        let lh = t.line_height();
        let (asc, desc) = (t.ascent(), t.descent());
        let block = Rect {
            w: max_w * REF_SIZE,
            h: ((n.saturating_sub(1)) as f32 * lh + asc - desc) * REF_SIZE,
        };
        let c = self.wm.color;
        let mut content = Vec::new();
        content.extend_from_slice(b"/G0 gs ");
        for v in [c.r, c.g, c.b] {
            push_num(&mut content, f32::from(v) / 255.0);
            content.push(b' ');
        }
        content.extend_from_slice(b"rg BT /F0 ");
        push_num(&mut content, REF_SIZE);
        content.extend_from_slice(b" Tf\n");
        let top = block.h / 2.0 - asc * REF_SIZE;
        for i in 0..n {
            let x = -t.line_width(i) * REF_SIZE / 2.0;
            let y = top - i as f32 * lh * REF_SIZE;
            content.extend_from_slice(b"1 0 0 1 ");
            push_num(&mut content, x);
            content.push(b' ');
            push_num(&mut content, y);
            content.extend_from_slice(b" Tm ");
            t.show_line(i, &mut content);
            content.push(b'\n');
        }
        content.extend_from_slice(b"ET");
        let pad = REF_SIZE * 0.1;
        let mut dict = Vec::new();
        dict.extend_from_slice(b"<</Type/XObject/Subtype/Form/BBox[");
        for (i, v) in [
            -block.w / 2.0 - pad,
            -block.h / 2.0 - pad,
            block.w / 2.0 + pad,
            block.h / 2.0 + pad,
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                dict.push(b' ');
            }
            push_num(&mut dict, v);
        }
        let _ = write!(
            Buf(&mut dict),
            "]/Resources<</Font<</F0 {font} 0 R>>/ExtGState<</G0<</Type/ExtGState/ca "
        );
        push_num(&mut dict, self.wm.opacity);
        dict.extend_from_slice(b"/CA ");
        push_num(&mut dict, self.wm.opacity);
        dict.extend_from_slice(b">>>>>>>>");
        let id = self.alloc();
        self.objects
            .push(NewObject::stream(id, dict, content, true));
        self.form = Some((id, block));
        (id, block)
    }

    fn open_q(&mut self) -> u32 {
        if let Some(id) = self.open_q {
            return id;
        }
        let id = self.alloc();
        self.objects.push(NewObject::stream(
            id,
            b"<<>>".to_vec(),
            b"q\n".to_vec(),
            false,
        ));
        self.open_q = Some(id);
        id
    }

    /// Copies a value of a loaded object into a new body: verbatim when
    /// possible; with decrypted strings when it came from an encrypted
    /// object in the file (bodies carry plaintext strings).
    fn copy_value(
        &self,
        out: &mut Vec<u8>,
        source: &Source,
        owner: Ref,
        value: &Object,
        span: &std::ops::Range<usize>,
    ) {
        match (self.doc.crypt(), source) {
            (Some(c), Source::File) => push_object(out, value, &mut |s| c.decrypt_string(owner, s)),
            (_, Source::File) => out.extend_from_slice(&self.doc.data()[span.clone()]),
            (_, Source::ObjStm(buf)) => out.extend_from_slice(&buf[span.clone()]),
        }
    }

    fn copy_entries(
        &self,
        out: &mut Vec<u8>,
        dict: &Dict,
        source: &Source,
        owner: Ref,
        skip: &[&[u8]],
    ) {
        for (k, v, span) in &dict.entries {
            if skip.contains(&k.as_slice()) {
                continue;
            }
            push_name(out, k);
            out.push(b' ');
            if span.is_empty() {
                push_object(out, v, &mut |s| s.to_vec());
            } else {
                self.copy_value(out, source, owner, v, span);
            }
        }
    }

    /// The body of a resources dictionary: the original's entries plus our
    /// form under `/XObject` as `name`.
    fn resources_body(
        &self,
        res: Option<&(Dict, Source)>,
        owner: Ref,
        name: &[u8],
        form: u32,
    ) -> Result<Vec<u8>> {
        let mut out = b"<<".to_vec();
        let mut xobjects = b"<<".to_vec();
        if let Some((dict, source)) = res {
            self.copy_entries(&mut out, dict, source, owner, &[b"XObject"]);
            match dict.get(b"XObject") {
                Some(Object::Dict(x)) => {
                    self.copy_entries(&mut xobjects, x, source, owner, &[name])
                }
                Some(Object::Ref(r)) => {
                    if let Some(l) = self.doc.get(*r)?
                        && let Object::Dict(x) = &l.obj
                    {
                        self.copy_entries(&mut xobjects, x, &l.source, *r, &[name]);
                    }
                }
                _ => {}
            }
        }
        push_name(&mut xobjects, name);
        let _ = write!(Buf(&mut xobjects), " {form} 0 R>>");
        out.extend_from_slice(b"/XObject");
        out.extend_from_slice(&xobjects);
        out.extend_from_slice(b">>");
        Ok(out)
    }

    /// For a rebuilt (flat) page tree: writes the attributes `page` used to
    /// inherit from nodes that are no longer its ancestors.
    fn push_inherited(&self, out: &mut Vec<u8>, page: &Page, skip: &[&[u8]]) {
        if self.parent.is_none() {
            return;
        }
        for (key, value, owner) in &page.inherited {
            if skip.contains(&key.as_slice()) {
                continue;
            }
            push_name(out, key);
            out.push(b' ');
            match self.doc.crypt() {
                Some(c) => push_object(out, value, &mut |s| c.decrypt_string(*owner, s)),
                None => push_object(out, value, &mut |s| s.to_vec()),
            }
        }
    }

    /// A resource name the page's `/XObject` dictionary doesn't use yet.
    fn free_name(&self, res: Option<&(Dict, Source)>) -> Result<Vec<u8>> {
        let existing: Vec<Vec<u8>> = match res.and_then(|(d, _)| d.get(b"XObject")) {
            Some(Object::Dict(x)) => x.entries.iter().map(|(k, _, _)| k.clone()).collect(),
            Some(o @ Object::Ref(_)) => match self.doc.resolve(o)? {
                Object::Dict(x) => x.entries.iter().map(|(k, _, _)| k.clone()).collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let mut name = b"PdWm".to_vec();
        let mut n = 0u32;
        while existing.contains(&name) {
            n += 1;
            name = format!("PdWm{n}").into_bytes();
        }
        Ok(name)
    }

    /// The page's existing content streams, as references.
    fn contents(&self, page: &Page) -> Result<Vec<Object>> {
        Ok(match page.dict.get(b"Contents") {
            Some(Object::Ref(r)) => match self.doc.get(*r)? {
                Some(Loaded {
                    obj: Object::Array(items),
                    ..
                }) => items.into_iter().filter(|o| o.as_ref().is_some()).collect(),
                Some(Loaded {
                    stream_start: Some(_),
                    ..
                }) => vec![Object::Ref(*r)],
                _ => Vec::new(),
            },
            Some(Object::Array(items)) => items
                .iter()
                .filter(|o| o.as_ref().is_some())
                .cloned()
                .collect(),
            _ => Vec::new(),
        })
    }

    fn stamp_page(&mut self, page: &Page, prep: Prepared) -> Result<()> {
        let (form, block) = self.form();
        let res = page.resources_dict.as_ref();
        let Prepared {
            name,
            contents: original,
        } = prep;

        // Resources: inline for a page that had its own direct dictionary;
        // otherwise one new object per original resources, shared by pages.
        let resources_value: Vec<u8> = match &page.resources {
            ResourcesFrom::InPage => self.resources_body(res, page.r, &name, form)?,
            ResourcesFrom::Indirect(r) if self.resource_users.get(r) == Some(&1) => {
                self.resources_body(res, *r, &name, form)?
            }
            from => {
                let key = (from.clone(), name.clone());
                let id = match self.resources.get(&key) {
                    Some(&id) => id,
                    None => {
                        let owner = match from {
                            ResourcesFrom::Indirect(r) | ResourcesFrom::InAncestor(r) => *r,
                            _ => page.r,
                        };
                        let body = self.resources_body(res, owner, &name, form)?;
                        let id = self.alloc();
                        self.objects.push(NewObject::direct(id, body));
                        self.resources.insert(key, id);
                        id
                    }
                };
                format!("{id} 0 R").into_bytes()
            }
        };

        let suffix = self.placement_ops(page, block, &name);
        let suffix_id = match self.suffixes.get(&suffix) {
            Some(&id) => id,
            None => {
                let id = self.alloc();
                self.objects.push(NewObject::stream(
                    id,
                    b"<<>>".to_vec(),
                    suffix.clone(),
                    suffix.len() > 200,
                ));
                self.suffixes.insert(suffix, id);
                id
            }
        };

        let mut contents = b"[".to_vec();
        let mut items: Vec<u32> = Vec::new();
        let push_ref = |out: &mut Vec<u8>, o: &Object| {
            if let Some(r) = o.as_ref() {
                let _ = write!(Buf(out), "{} {} R ", r.num, r.generation);
            }
        };
        match self.wm.layer {
            Layer::Over => {
                let q = self.open_q();
                items.push(q);
                let _ = write!(Buf(&mut contents), "{q} 0 R ");
                for o in &original {
                    push_ref(&mut contents, o);
                }
                let _ = write!(Buf(&mut contents), "{suffix_id} 0 R");
            }
            Layer::Under => {
                let _ = write!(Buf(&mut contents), "{suffix_id} 0 R ");
                for o in &original {
                    push_ref(&mut contents, o);
                }
            }
        }
        contents.push(b']');

        let mut body = b"<<".to_vec();
        self.copy_entries(
            &mut body,
            &page.dict,
            &page.source,
            page.r,
            &[b"Contents", b"Resources", b"Parent"],
        );
        self.push_inherited(&mut body, page, &[b"Resources"]);
        match (self.parent, page.dict.get(b"Parent")) {
            (Some(p), _) | (None, Some(&Object::Ref(p))) => {
                let _ = write!(Buf(&mut body), "/Parent {} {} R", p.num, p.generation);
            }
            _ => {}
        }
        body.extend_from_slice(b"/Contents");
        body.extend_from_slice(&contents);
        body.extend_from_slice(b"/Resources ");
        body.extend_from_slice(&resources_value);
        body.extend_from_slice(b">>");
        self.objects.push(NewObject {
            id: page.r.num,
            generation: page.r.generation,
            body: Body::Direct(body),
        });
        Ok(())
    }

    /// The content operators that place the form on `page`: the main
    /// watermark and the optional header, upright for the reader.
    fn placement_ops(&self, page: &Page, block: Rect, name: &[u8]) -> Vec<u8> {
        let v = page.visible;
        let (w, h) = if page.rotate % 180 == 90 {
            (v.height(), v.width())
        } else {
            (v.width(), v.height())
        };
        let geo = Geometry {
            x0: v.x0,
            y0: v.y0,
            x1: v.x1,
            y1: v.y1,
            rotate: page.rotate,
        };

        let angle = match self.wm.rotation {
            Rotation::Degrees(d) => d,
            Rotation::Diagonal => h.atan2(w).to_degrees(),
        };
        let (sin, cos) = angle.to_radians().sin_cos();
        // Extents of the rotated block per point of font size.
        let unit_w = block.w / REF_SIZE;
        let unit_h = block.h / REF_SIZE;
        let ext_x = cos.abs() * unit_w + sin.abs() * unit_h;
        let ext_y = sin.abs() * unit_w + cos.abs() * unit_h;
        let wanted = match self.wm.size {
            Size::Points(p) => p,
            Size::Auto => {
                // The original script: height / length * (height * 1.1 / width).
                let len = self
                    .wm
                    .lines()
                    .map(|l| l.chars().count())
                    .max()
                    .unwrap_or(1)
                    .max(1) as f32;
                (h / len) * (h * 1.1 / w)
            }
        };
        let fit = (FIT * w / ext_x.max(1e-6)).min(FIT * h / ext_y.max(1e-6));
        let size = wanted.min(fit).max(0.01);
        let (fx, fy) = self.wm.position.anchor.fractions();
        let (ew, eh) = (ext_x * size, ext_y * size);
        // Anchor the rotated block inside the page, keeping the margin where
        // it fits; then apply the caller's offset.
        let along = |frac: f32, extent: f32, span: f32| {
            let margin = ((1.0 - FIT) / 2.0 * span).min(((span - extent) / 2.0).max(0.0));
            margin + frac * (span - extent - 2.0 * margin) + extent / 2.0
        };
        let cx = along(fx, ew, w) + self.wm.position.dx;
        let cy = along(fy, eh, h) + self.wm.position.dy;

        let mut ops = Vec::new();
        if self.wm.layer == Layer::Over {
            ops.extend_from_slice(b"\nQ ");
        }
        push_placement(&mut ops, &geo, cx, cy, angle, size / REF_SIZE, name);

        if self.wm.header {
            let unit_line = (0..self.text.line_count())
                .map(|i| self.text.line_width(i))
                .fold(0.0f32, f32::max);
            let hsize = HEADER_SIZE
                .min(FIT * w / unit_line.max(1e-6))
                .min(h / 20.0)
                .max(0.01);
            let top = HEADER_TOP.min(h * 0.126);
            let hy = h - top - unit_h * hsize / 2.0;
            ops.push(b' ');
            push_placement(&mut ops, &geo, w / 2.0, hy, 0.0, hsize / REF_SIZE, name);
        }
        ops.push(b'\n');
        ops
    }
}

/// The visible area and rotation of a page, for mapping reader coordinates
/// (origin at the reader's bottom left) to page coordinates.
struct Geometry {
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
    rotate: u16,
}

impl Geometry {
    /// A point the reader sees at `(x, y)`, in page space. `/Rotate` turns the
    /// page clockwise for display (§7.7.3.3).
    fn to_page(&self, x: f32, y: f32) -> (f32, f32) {
        match self.rotate {
            90 => (self.x1 - y, self.y0 + x),
            180 => (self.x1 - x, self.y1 - y),
            270 => (self.x0 + y, self.y1 - x),
            _ => (self.x0 + x, self.y0 + y),
        }
    }
}

/// `q a b c d e f cm /Name Do Q`: the form scaled by `scale`, turned by
/// `angle` degrees as the reader sees it, centred at reader point `(x, y)`.
fn push_placement(
    ops: &mut Vec<u8>,
    geo: &Geometry,
    x: f32,
    y: f32,
    angle: f32,
    scale: f32,
    name: &[u8],
) {
    let (px, py) = geo.to_page(x, y);
    let page_angle = (angle + f32::from(geo.rotate)).to_radians();
    let (sin, cos) = page_angle.sin_cos();
    ops.extend_from_slice(b"q ");
    for v in [cos * scale, sin * scale, -sin * scale, cos * scale, px, py] {
        push_num(ops, v);
        ops.push(b' ');
    }
    ops.extend_from_slice(b"cm ");
    push_name(ops, name);
    ops.extend_from_slice(b" Do Q");
}

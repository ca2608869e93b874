//! The page tree (PDF 1.7 §7.7.3): every page in order, with the attributes
//! it inherits (`/Resources`, `/MediaBox`, `/CropBox`, `/Rotate`).

use std::collections::HashSet;
use std::time::Instant;

use super::doc::{Document, Source};
use super::object::{Dict, Object, Ref};
use crate::error::StampError;

/// A rectangle `[x0 y0 x1 y1]`, normalized so `x0 <= x1`, `y0 <= y1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rect {
    /// Left.
    pub x0: f32,
    /// Bottom.
    pub y0: f32,
    /// Right.
    pub x1: f32,
    /// Top.
    pub y1: f32,
}

impl Rect {
    /// US Letter, what readers assume when a page has no usable `/MediaBox`.
    pub const LETTER: Rect = Rect {
        x0: 0.0,
        y0: 0.0,
        x1: 612.0,
        y1: 792.0,
    };

    fn from_object(o: &Object) -> Option<Rect> {
        let a = o.as_array()?;
        if a.len() != 4 {
            return None;
        }
        let v: Vec<f32> = a
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect::<Option<_>>()?;
        if v.iter().any(|x| !x.is_finite() || x.abs() > 1e7) {
            return None;
        }
        Some(Rect {
            x0: v[0].min(v[2]),
            y0: v[1].min(v[3]),
            x1: v[0].max(v[2]),
            y1: v[1].max(v[3]),
        })
    }

    /// Width.
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }

    /// Height.
    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }

    fn intersect(&self, o: &Rect) -> Option<Rect> {
        let r = Rect {
            x0: self.x0.max(o.x0),
            y0: self.y0.max(o.y0),
            x1: self.x1.min(o.x1),
            y1: self.y1.min(o.y1),
        };
        (r.width() > 0.5 && r.height() > 0.5).then_some(r)
    }
}

/// Where a page's `/Resources` come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ResourcesFrom {
    /// None anywhere in the chain.
    Nothing,
    /// A dictionary written directly in the page dictionary.
    InPage,
    /// An indirect dictionary (possibly shared by many pages).
    Indirect(Ref),
    /// A direct dictionary in an ancestor `/Pages` node.
    InAncestor(Ref),
}

/// One page as the engine needs it.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    /// The page object.
    pub r: Ref,
    /// Its dictionary.
    pub dict: Dict,
    /// Where `dict`'s spans point.
    pub source: Source,
    /// The visible area: `/CropBox` within `/MediaBox`.
    pub visible: Rect,
    /// `/Rotate`, normalized to 0, 90, 180 or 270.
    pub rotate: u16,
    /// Where the resources are.
    pub resources: ResourcesFrom,
    /// The resources dictionary (resolved), if any.
    pub resources_dict: Option<(Dict, Source)>,
    /// Attributes the page inherits from its ancestors (`/Resources`,
    /// `/MediaBox`, `/CropBox`, `/Rotate`) with the node they come from:
    /// written into the page itself when the tree is rebuilt flat.
    pub inherited: Vec<(Vec<u8>, Object, Ref)>,
}

#[derive(Clone, Default)]
struct Inherited {
    resources: Option<(Object, Ref)>,
    media_box: Option<(Object, Ref)>,
    crop_box: Option<(Object, Ref)>,
    rotate: Option<(Object, Ref)>,
}

/// The document's pages, and whether the page tree had to be rebuilt.
#[derive(Debug)]
pub(crate) struct PageTree {
    /// Every page in order.
    pub pages: Vec<Page>,
    /// When the tree was unusable: the `/Pages` node to write anew, holding
    /// every page found in the file (each page's `/Parent` must point to it).
    pub rebuilt_root: Option<Ref>,
}

/// Walks the page tree of `doc` from the catalog. When the tree yields no
/// page at all (a lost `/Pages` node, as in damaged files), collects every
/// `/Type /Page` object of the file instead, in object-number order.
///
/// A tree that names pages which no longer exist (a damaged or truncated
/// file) is rebuilt flat from the pages that do, in their order, so the
/// output's page count is the number of pages a reader can show.
pub(crate) fn pages(doc: &Document<'_>, started: Instant) -> Result<PageTree, StampError> {
    let walk_error = match walk(doc, started) {
        Err(e @ StampError::NoPages) => e,
        Err(e @ StampError::Damaged(_)) if doc.trailer.has(b"Root") => e,
        Ok((pages, Some(root))) => {
            return Ok(PageTree {
                pages,
                rebuilt_root: Some(root),
            });
        }
        other => {
            return other.map(|(pages, _)| PageTree {
                pages,
                rebuilt_root: None,
            });
        }
    };
    doc.force_repair();
    let root = doc.trailer.get(b"Root").and_then(Object::as_ref);
    let catalog = match root {
        Some(r) => doc.get(r)?.map(|l| l.obj),
        None => None,
    };
    let node = catalog
        .as_ref()
        .and_then(Object::as_dict)
        .and_then(|d| d.get(b"Pages"))
        .and_then(Object::as_ref);
    let Some(node) = node else {
        return Err(StampError::Damaged(
            "the catalog has no /Pages tree and the pages cannot be reattached".into(),
        ));
    };
    let limits = doc.limits();
    let mut pages = Vec::new();
    for (num, entry) in doc.all_entries() {
        let generation = match entry {
            super::doc::Entry::InFile { generation, .. } => generation,
            _ => 0,
        };
        let r = Ref::new(num, generation);
        let Some(loaded) = doc.get(r)? else { continue };
        let Object::Dict(dict) = loaded.obj else {
            continue;
        };
        if dict.name(b"Type") != Some(b"Page") {
            continue;
        }
        if pages.len() as u64 >= u64::from(limits.max_pages) {
            return Err(StampError::TooManyPages {
                count: pages.len() as u64 + 1,
                limit: u64::from(limits.max_pages),
            });
        }
        let own = |k: &[u8]| dict.get(k).map(|v| (v.clone(), r));
        let inh = Inherited {
            resources: own(b"Resources"),
            media_box: own(b"MediaBox"),
            crop_box: own(b"CropBox"),
            rotate: own(b"Rotate"),
        };
        pages.push(make_page(doc, r, dict, loaded.source, &inh)?);
    }
    if pages.is_empty() {
        return Err(walk_error);
    }
    Ok(PageTree {
        pages,
        rebuilt_root: Some(node),
    })
}

/// The pages in tree order, and the root `/Pages` node when some kid could
/// not be found (the tree must then be rebuilt).
fn walk(doc: &Document<'_>, started: Instant) -> Result<(Vec<Page>, Option<Ref>), StampError> {
    let limits = doc.limits().clone();
    let root = doc
        .trailer
        .get(b"Root")
        .and_then(Object::as_ref)
        .ok_or_else(|| StampError::Damaged("the trailer has no /Root".into()))?;
    let catalog = match doc.get(root)? {
        Some(l) => l.obj,
        None => {
            return Err(StampError::Damaged(
                "the document catalog is missing".into(),
            ));
        }
    };
    let pages_ref = catalog
        .as_dict()
        .and_then(|d| d.get(b"Pages"))
        .and_then(Object::as_ref)
        .ok_or_else(|| StampError::Damaged("the catalog has no /Pages tree".into()))?;
    if let Some(Some(l)) = doc.get(pages_ref).ok()
        && let Some(count) = l.obj.as_dict().and_then(|d| d.int(b"Count"))
        && count > i64::from(limits.max_pages)
        && count < i64::from(u32::MAX)
    {
        return Err(StampError::TooManyPages {
            count: count as u64,
            limit: u64::from(limits.max_pages),
        });
    }

    let mut out = Vec::new();
    let mut visited: HashSet<Ref> = HashSet::new();
    let mut dangling = false;
    let mut stack: Vec<(Ref, Inherited, u32)> = vec![(pages_ref, Inherited::default(), 0)];
    while let Some((r, inh, depth)) = stack.pop() {
        if depth > limits.max_depth {
            return Err(StampError::TooDeep {
                limit: limits.max_depth,
            });
        }
        if !visited.insert(r) {
            continue; // a cycle or a page listed twice
        }
        if let Some(t) = limits.time_limit
            && out.len() % 64 == 0
            && started.elapsed() > t
        {
            return Err(StampError::TimeLimit {
                limit_ms: t.as_millis() as u64,
            });
        }
        let Some(loaded) = doc.get(r)? else {
            dangling = true;
            continue;
        };
        let Object::Dict(dict) = loaded.obj else {
            dangling = true;
            continue;
        };
        let mut inh = inh;
        if let Some(v) = dict.get(b"Resources") {
            inh.resources = Some((v.clone(), r));
        }
        for (key, slot) in [
            (&b"MediaBox"[..], &mut inh.media_box),
            (b"CropBox", &mut inh.crop_box),
            (b"Rotate", &mut inh.rotate),
        ] {
            if let Some(v) = dict.get(key)
                && *v != Object::Null
            {
                *slot = Some((v.clone(), r));
            }
        }
        let kids = match dict.get(b"Kids") {
            Some(Object::Array(a)) => Some(a.clone()),
            Some(o @ Object::Ref(_)) => doc.resolve(o)?.as_array().map(<[Object]>::to_vec),
            _ => None,
        };
        let is_leaf = dict.name(b"Type") == Some(b"Page") || kids.is_none();
        if !is_leaf {
            for kid in kids.unwrap_or_default().iter().rev() {
                match kid.as_ref() {
                    Some(k) => stack.push((k, inh.clone(), depth + 1)),
                    None => dangling = true,
                }
            }
            continue;
        }
        if out.len() as u64 >= u64::from(limits.max_pages) {
            return Err(StampError::TooManyPages {
                count: out.len() as u64 + 1,
                limit: u64::from(limits.max_pages),
            });
        }
        out.push(make_page(doc, r, dict, loaded.source, &inh)?);
    }
    if out.is_empty() && dangling {
        return Err(StampError::Damaged(
            "the page tree names pages that cannot be found".into(),
        ));
    }
    if out.is_empty() {
        return Err(StampError::NoPages);
    }
    Ok((out, dangling.then_some(pages_ref)))
}

fn make_page(
    doc: &Document<'_>,
    r: Ref,
    dict: Dict,
    source: Source,
    inh: &Inherited,
) -> Result<Page, StampError> {
    let boxed = |o: &Option<(Object, Ref)>| -> Result<Option<Rect>, StampError> {
        Ok(match o {
            Some((v, _)) => Rect::from_object(&doc.resolve(v)?),
            None => None,
        })
    };
    let media = boxed(&inh.media_box)?
        .filter(|m| m.width() > 0.5 && m.height() > 0.5)
        .unwrap_or(Rect::LETTER);
    let visible = boxed(&inh.crop_box)?
        .and_then(|c| c.intersect(&media))
        .unwrap_or(media);
    let rotate = match &inh.rotate {
        Some((v, _)) => doc.resolve(v)?.as_i64().unwrap_or(0),
        None => 0,
    };
    let inherited = [
        (&b"Resources"[..], inh.resources.as_ref()),
        (b"MediaBox", inh.media_box.as_ref()),
        (b"CropBox", inh.crop_box.as_ref()),
        (b"Rotate", inh.rotate.as_ref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        v.filter(|(_, owner)| *owner != r)
            .map(|(o, owner)| (k.to_vec(), o.clone(), *owner))
    })
    .collect();
    // Only multiples of 90 are meaningful; round others as viewers do.
    let rotate = ((rotate.rem_euclid(360) + 45) / 90 * 90 % 360) as u16;
    let (resources, resources_dict) = match &inh.resources {
        None => (ResourcesFrom::Nothing, None),
        Some((Object::Dict(d), owner)) => {
            if *owner == r {
                (ResourcesFrom::InPage, Some((d.clone(), source.clone())))
            } else {
                let src = doc
                    .get(*owner)?
                    .map(|l| l.source)
                    .unwrap_or(super::doc::Source::File);
                (ResourcesFrom::InAncestor(*owner), Some((d.clone(), src)))
            }
        }
        Some((Object::Ref(rr), _)) => match doc.get(*rr)? {
            Some(l) => match l.obj {
                Object::Dict(d) => (ResourcesFrom::Indirect(*rr), Some((d, l.source))),
                _ => (ResourcesFrom::Nothing, None),
            },
            None => (ResourcesFrom::Nothing, None),
        },
        Some(_) => (ResourcesFrom::Nothing, None),
    };
    Ok(Page {
        r,
        dict,
        source,
        visible,
        rotate,
        resources,
        resources_dict,
        inherited,
    })
}

// MuPDF peer for bench/engine.sh: watermark every page with ONE shared Form XObject.
//
//   mutool run bench/stamp.js IN.pdf OUT.pdf "Ricky Bobby"
//
// What it does (the fastest fair thing MuPDF's `mutool run` can do, and the
// same shape as Peedy's output):
// - one Form XObject holds the text: Helvetica (standard 14, not embedded),
//   60 pt, rotated 50°, centred on its origin, drawn with an ExtGState /ca 0.2;
// - every page gets that form in its /Resources (/XObject /PdyStamp0; the
//   resources are made page-local first if they were inherited from /Pages);
// - every page's /Contents becomes [q-stream, original…, stamp-stream]: the
//   original content is isolated by one shared "q" stream, and the stamp stream
//   "Q q <cm> /PdyStamp0 Do Q" places the form at the centre of the visible area
//   (CropBox within MediaBox), turned by the page's /Rotate so it is upright for
//   the reader. Stamp streams are shared between pages with the same box/rotate.
// - saving: an incremental update appended to the original bytes
//   (`save(out, "incremental")`) — it only writes what changed, so it is the
//   fastest option and the fair comparison with Peedy's appended update. When
//   MuPDF refuses an incremental save (repaired/broken xref, encryption), it falls
//   back to a full rewrite with "compress" (new streams deflated). Each file
//   prints one line on stderr saying which path was taken.
//
// Only the standard-14 font is used, so non-Latin-1 text is not rendered right;
// the benchmark uses "Ricky Bobby".

var args = scriptArgs;
if (args.length < 2) {
	print("usage: mutool run stamp.js IN.pdf OUT.pdf [TEXT]");
	quit(2);
}
var inPath = args[0], outPath = args[1];
var text = args.length > 2 ? args[2] : "Ricky Bobby";

var SIZE = 60, ANGLE = 50, OPACITY = 0.2, XNAME = "PdyStamp0";

// Helvetica advance widths (1/1000 em) for printable ASCII 32..126.
var HELV = [278,278,355,556,556,889,667,191,333,333,389,584,278,333,278,278,
	556,556,556,556,556,556,556,556,556,556,278,278,584,584,584,556,1015,667,667,
	722,722,667,611,778,722,278,500,667,556,833,722,778,667,778,722,667,611,722,
	667,944,667,667,611,278,278,278,469,556,333,556,556,500,556,556,278,556,556,
	222,222,500,222,833,556,556,556,556,278,500,556,500,722,500,500,500,334,260,
	334,584];

function textWidth(s) {
	var w = 0;
	for (var i = 0; i < s.length; i++) {
		var c = s.charCodeAt(i);
		w += (c >= 32 && c <= 126) ? HELV[c - 32] : 556;
	}
	return w * SIZE / 1000;
}

function pdfString(s) {
	var out = "(";
	for (var i = 0; i < s.length; i++) {
		var ch = s.charAt(i);
		var c = s.charCodeAt(i);
		if (ch == "(" || ch == ")" || ch == "\\") out += "\\" + ch;
		else if (c >= 32 && c <= 126) out += ch;
		else out += "?";
	}
	return out + ")";
}

function f(x) { return (Math.round(x * 10000) / 10000).toString(); }

var doc = new PDFDocument(inPath);
var n = doc.countPages();

function name(s) { return doc.newName(s); }

// The form: the text centred on (0,0), rotated by ANGLE.
var font = doc.newDictionary();
font.put("Type", name("Font"));
font.put("Subtype", name("Type1"));
font.put("BaseFont", name("Helvetica"));
font.put("Encoding", name("WinAnsiEncoding"));
var gs = doc.newDictionary();
gs.put("Type", name("ExtGState"));
gs.put("ca", OPACITY);
gs.put("CA", OPACITY);

var a = ANGLE * Math.PI / 180, c = Math.cos(a), s = Math.sin(a);
var w = textWidth(text);
var formContent = "q /GS0 gs " + f(c) + " " + f(s) + " " + f(-s) + " " + f(c) + " 0 0 cm BT /F0 " +
	SIZE + " Tf 0 g " + f(-w / 2) + " " + f(-0.718 * SIZE / 2) + " Td " + pdfString(text) + " Tj ET Q";
var half = (w / 2 + SIZE);
var fres = doc.newDictionary();
var fonts = doc.newDictionary(); fonts.put("F0", doc.addObject(font)); fres.put("Font", fonts);
var gss = doc.newDictionary(); gss.put("GS0", doc.addObject(gs)); fres.put("ExtGState", gss);
var fdict = doc.newDictionary();
fdict.put("Type", name("XObject"));
fdict.put("Subtype", name("Form"));
var bbox = doc.newArray();
bbox.push(-half); bbox.push(-half); bbox.push(half); bbox.push(half);
fdict.put("BBox", bbox);
fdict.put("Resources", fres);
var form = doc.addStream(formContent, fdict);

var qStream = doc.addStream("q\n", doc.newDictionary());

function inherited(page, key) {
	var node = page;
	for (var depth = 0; depth < 64 && node && !node.isNull(); depth++) {
		var v = node.get(key);
		if (v && !v.isNull()) return v;
		node = node.get("Parent");
	}
	return null;
}

function box(page) {
	var mb = inherited(page, "MediaBox");
	var cb = inherited(page, "CropBox");
	var m = mb ? [mb.get(0).valueOf(), mb.get(1).valueOf(), mb.get(2).valueOf(), mb.get(3).valueOf()] : [0, 0, 612, 792];
	var b = m;
	if (cb) {
		var k = [cb.get(0).valueOf(), cb.get(1).valueOf(), cb.get(2).valueOf(), cb.get(3).valueOf()];
		b = [Math.max(Math.min(k[0], k[2]), Math.min(m[0], m[2])), Math.max(Math.min(k[1], k[3]), Math.min(m[1], m[3])),
			Math.min(Math.max(k[0], k[2]), Math.max(m[0], m[2])), Math.min(Math.max(k[1], k[3]), Math.max(m[1], m[3]))];
	}
	return b;
}

var stampCache = {};
function stampStream(b, rot) {
	var cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2;
	var key = f(cx) + "," + f(cy) + "," + rot;
	if (stampCache[key]) return stampCache[key];
	var r = rot * Math.PI / 180, rc = Math.cos(r), rs = Math.sin(r);
	var body = "Q q " + f(rc) + " " + f(rs) + " " + f(-rs) + " " + f(rc) + " " + f(cx) + " " + f(cy) +
		" cm /" + XNAME + " Do Q\n";
	return (stampCache[key] = doc.addStream(body, doc.newDictionary()));
}

for (var i = 0; i < n; i++) {
	var page = doc.findPage(i);
	var res = page.get("Resources");
	if (!res || res.isNull()) {
		var inh = inherited(page, "Resources");
		res = doc.newDictionary();
		if (inh) inh.forEach(function (v, k) { res.put(k, v); });
		page.put("Resources", res);
	}
	var xo = res.get("XObject");
	if (!xo || xo.isNull()) {
		xo = doc.newDictionary();
		res.put("XObject", xo);
	}
	xo.put(XNAME, form);

	var rot = inherited(page, "Rotate");
	rot = rot ? ((rot.valueOf() % 360) + 360) % 360 : 0;

	var contents = doc.newArray();
	contents.push(qStream);
	var old = page.get("Contents");
	if (old && !old.isNull()) {
		if (old.isArray()) {
			for (var j = 0; j < old.length; j++) contents.push(old.get(j));
		} else {
			contents.push(old);
		}
	}
	contents.push(stampStream(box(page), rot));
	page.put("Contents", contents);
}

var how = "incremental";
try {
	if (!doc.canBeSavedIncrementally()) throw new Error("cannot be saved incrementally");
	doc.save(outPath, "incremental");
} catch (e) {
	how = "full rewrite (" + e + ")";
	doc.save(outPath, "compress");
}
print("stamp.js: " + n + " pages, " + how);

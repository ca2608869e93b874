"""Builds PeedyTestCFF.otf, a tiny OpenType font with CFF outlines for the
text module's tests (the CFF embedding path and a caller-supplied font that
covers CJK). Every glyph is a plain box drawn here, so the file carries no
third-party design. Regenerate with: python3 make_test_cff.py (fontTools 4.x).
"""
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.t2CharStringPen import T2CharStringPen

UPEM = 1000
# char -> (advance, box) ; box = (x0, y0, x1, y1)
GLYPHS = {
    "A": (600, (50, 0, 550, 700)),
    "B": (600, (80, 0, 520, 700)),
    "\u6f22": (1000, (100, -80, 900, 800)),  # 漢
    "\u5b57": (1000, (120, -60, 880, 780)),  # 字
}

names = [".notdef", "space"] + ["uni%04X" % ord(c) for c in GLYPHS]
fb = FontBuilder(UPEM, isTTF=False)
fb.setupGlyphOrder(names)
cmap = {0x20: "space"}
cmap.update({ord(c): "uni%04X" % ord(c) for c in GLYPHS})
fb.setupCharacterMap(cmap)


def box(advance, rect):
    pen = T2CharStringPen(advance, None)
    if rect:
        x0, y0, x1, y1 = rect
        pen.moveTo((x0, y0))
        pen.lineTo((x0, y1))
        pen.lineTo((x1, y1))
        pen.lineTo((x1, y0))
        pen.closePath()
    return pen.getCharString()


charstrings = {".notdef": box(500, (50, 0, 450, 700)), "space": box(250, None)}
metrics = {".notdef": (500, 50), "space": (250, 0)}
for c, (adv, rect) in GLYPHS.items():
    name = "uni%04X" % ord(c)
    charstrings[name] = box(adv, rect)
    metrics[name] = (adv, rect[0])

fb.setupCFF("PeedyTestCFF", {"FullName": "Peedy Test CFF"}, charstrings, {})
fb.setupHorizontalMetrics(metrics)
fb.setupHorizontalHeader(ascent=880, descent=-120)
fb.setupNameTable({"familyName": "Peedy Test CFF", "styleName": "Regular", "psName": "PeedyTestCFF"})
fb.setupOS2(sTypoAscender=880, sTypoDescender=-120, usWinAscent=880, usWinDescent=120,
            sCapHeight=700)
fb.setupPost()
fb.save("PeedyTestCFF.otf")

#!/usr/bin/env python3
"""Writes the sample store-shelf images the demo and the browser test serve locally, one per
format the image worker measures (PNG, GIF, BMP, JPEG), with the Python standard library only.

    python3 events/samples/images/make.py      # rewrites the files next to this script

The pictures are deterministic: the same bytes on every run. Their sizes are part of the
browser test's expectations (perimeter = 2 * (width + height)).
"""
import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

# (file, width, height, seed)
IMAGES = [
    ("shelf-aisle.png", 320, 200, 1),
    ("storefront.gif", 160, 120, 2),
    ("checkout.bmp", 64, 48, 3),
    ("produce.jpg", 240, 160, 4),
]

PALETTE = [
    (245, 241, 232), (226, 220, 205), (120, 82, 45), (92, 60, 30),   # wall, wall shade, shelf, shelf edge
    (220, 38, 38), (234, 88, 12), (234, 179, 8), (22, 163, 74),      # products
    (37, 99, 235), (147, 51, 234), (236, 72, 153), (20, 184, 166),
    (255, 255, 255), (30, 41, 59), (100, 116, 139), (250, 204, 21),
]


def scene(w, h, seed):
    """Rows of palette indexes: a wall, shelves, and boxes of products on each shelf."""
    rnd = seed * 7919 + 17

    def rand(n):
        nonlocal rnd
        rnd = (rnd * 1103515245 + 12345) & 0x7FFFFFFF
        return rnd % n

    px = [[0 if y < h // 8 else 1 for _ in range(w)] for y in range(h)]
    shelves = 3
    band = h // shelves
    for s in range(shelves):
        base = (s + 1) * band - max(2, h // 40) - 1
        x = 2
        while x < w - 4:
            bw = max(3, w // 16 + rand(max(2, w // 10)))
            bh = max(3, band // 3 + rand(max(2, band // 2)))
            color = 4 + rand(11)
            label = 12 if rand(3) else 13
            for y in range(max(0, base - bh), base):
                for xx in range(x, min(w - 2, x + bw)):
                    edge = xx in (x, x + bw - 1) or y == base - bh
                    mid = abs(y - (base - bh // 2)) < max(1, bh // 8) and x + 1 < xx < x + bw - 2
                    px[y][xx] = 13 if edge else (label if mid else color)
            x += bw + 1 + rand(3)
        for y in range(base, min(h, base + max(2, h // 40) + 1)):
            for xx in range(w):
                px[y][xx] = 3 if y == base else 2
    return px


def rgb_rows(px):
    return [[PALETTE[i] for i in row] for row in px]


# ---------------------------------------------------------------- PNG (RGB, zlib)
def png(w, h, px):
    raw = b"".join(b"\x00" + bytes(c for p in row for c in p) for row in rgb_rows(px))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


# ---------------------------------------------------------------- GIF (16 colors, LZW)
def gif(w, h, px):
    min_code = 4
    clear, end = 1 << min_code, (1 << min_code) + 1
    out, bits, nbits = bytearray(), 0, 0
    size = min_code + 1

    def emit(code):
        nonlocal bits, nbits
        bits |= code << nbits
        nbits += size
        while nbits >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            nbits -= 8

    table = {(i,): i for i in range(clear)}
    nxt = end + 1
    emit(clear)
    cur = ()
    for i in (v for row in px for v in row):
        key = cur + (i,)
        if key in table:
            cur = key
            continue
        emit(table[cur])
        if nxt < 4096:
            table[key] = nxt
            nxt += 1
            if nxt > (1 << size) and size < 12:
                size += 1
        else:
            emit(clear)
            table = {(j,): j for j in range(clear)}
            nxt, size = end + 1, min_code + 1
        cur = (i,)
    emit(table[cur])
    emit(end)
    if nbits:
        out.append(bits & 0xFF)
    blocks = b"".join(bytes([len(out[i:i + 255])]) + bytes(out[i:i + 255]) for i in range(0, len(out), 255))
    palette = b"".join(bytes(c) for c in PALETTE)
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF3, 0, 0) + palette
            + b"," + struct.pack("<HHHHB", 0, 0, w, h, 0) + bytes([min_code]) + blocks + b"\x00;")


# ---------------------------------------------------------------- BMP (24-bit, bottom-up)
def bmp(w, h, px):
    pad = (4 - (w * 3) % 4) % 4
    rows = b"".join(bytes(c for p in row for c in (p[2], p[1], p[0])) + b"\x00" * pad for row in reversed(rgb_rows(px)))
    header = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(rows), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(header) + len(rows), 0, 0, 14 + len(header)) + header + rows


# ---------------------------------------------------------------- JPEG (baseline, 4:4:4)
ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14,
          21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60,
          61, 54, 47, 55, 62, 63]
Q_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22,
          29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103,
          121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
Q_CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99,
            99, 99, 99, 99, 99] + [99] * 32
# Annex K standard Huffman tables: (code counts by length 1..16, values)
DC_LUMA = ([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], list(range(12)))
DC_CHROMA = ([0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], list(range(12)))
AC_LUMA = ([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D], bytes.fromhex(
    "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a343536"
    "3738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a9293949596979899"
    "9aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5"
    "f6f7f8f9fa"))
AC_CHROMA = ([0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77], bytes.fromhex(
    "000102031104052131061241510761711322328108144291a1b1c109233352f0156272d10a162434e125f11718191a262728292a"
    "35363738393a434445464748494a535455565758595a636465666768696a737475767778797a82838485868788898a9293949596"
    "9798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4"
    "f5f6f7f8f9fa"))


def huffman_codes(table):
    counts, values = table
    codes, code, k = {}, 0, 0
    for length, n in enumerate(counts, start=1):
        for _ in range(n):
            codes[values[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


def jpeg(w, h, px, quality=80):
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    qt = [[max(1, min(255, (q * scale + 50) // 100)) for q in base] for base in (Q_LUMA, Q_CHROMA)]
    cos = [[math.cos((2 * x + 1) * u * math.pi / 16) for x in range(8)] for u in range(8)]
    cu = [math.sqrt(0.5) if u == 0 else 1.0 for u in range(8)]
    rows = rgb_rows(px)
    planes = [[[0.0] * w for _ in range(h)] for _ in range(3)]
    for y in range(h):
        for x in range(w):
            r, g, b = rows[y][x]
            planes[0][y][x] = 0.299 * r + 0.587 * g + 0.114 * b - 128
            planes[1][y][x] = -0.168736 * r - 0.331264 * g + 0.5 * b
            planes[2][y][x] = 0.5 * r - 0.418688 * g - 0.081312 * b
    huff = [(huffman_codes(DC_LUMA), huffman_codes(AC_LUMA)), (huffman_codes(DC_CHROMA), huffman_codes(AC_CHROMA))]
    out, acc, nacc = bytearray(), 0, 0

    def put(code, length):
        nonlocal acc, nacc
        acc = (acc << length) | code
        nacc += length
        while nacc >= 8:
            byte = (acc >> (nacc - 8)) & 0xFF
            out.append(byte)
            if byte == 0xFF:
                out.append(0)  # byte stuffing
            nacc -= 8
        acc &= (1 << nacc) - 1

    def magnitude(v):
        n = abs(v).bit_length()
        return n, (v if v >= 0 else v + (1 << n) - 1)

    def block(plane, bx, by, q, tables, prev_dc):
        s = [[plane[min(h - 1, by + y)][min(w - 1, bx + x)] for x in range(8)] for y in range(8)]
        rowpass = [[sum(s[y][x] * cos[u][x] for x in range(8)) for u in range(8)] for y in range(8)]
        coef = [0] * 64
        for v in range(8):
            for u in range(8):
                d = 0.25 * cu[u] * cu[v] * sum(rowpass[y][u] * cos[v][y] for y in range(8))
                coef[v * 8 + u] = int(round(d / q[v * 8 + u]))
        zz = [coef[i] for i in ZIGZAG]
        dc_codes, ac_codes = tables
        n, bits = magnitude(zz[0] - prev_dc)
        put(*dc_codes[n])
        if n:
            put(bits, n)
        run = 0
        for v in zz[1:]:
            if v == 0:
                run += 1
                continue
            while run > 15:
                put(*ac_codes[0xF0])
                run -= 16
            n, bits = magnitude(v)
            put(*ac_codes[(run << 4) | n])
            put(bits, n)
            run = 0
        if run:
            put(*ac_codes[0x00])
        return zz[0]

    dc = [0, 0, 0]
    for by in range(0, h, 8):
        for bx in range(0, w, 8):
            for c in range(3):
                dc[c] = block(planes[c], bx, by, qt[min(c, 1)], huff[min(c, 1)], dc[c])
    if nacc:
        put((1 << (8 - nacc)) - 1, 8 - nacc)  # pad with ones

    def segment(marker, data):
        return bytes([0xFF, marker]) + struct.pack(">H", len(data) + 2) + data

    def dht(cls, ident, table):
        counts, values = table
        return bytes([(cls << 4) | ident]) + bytes(counts) + bytes(values)

    head = b"\xff\xd8" + segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    head += segment(0xDB, b"".join(bytes([i]) + bytes(qt[i][z] for z in ZIGZAG) for i in range(2)))
    head += segment(0xC0, struct.pack(">BHHB", 8, h, w, 3) + bytes([1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1]))
    head += segment(0xC4, dht(0, 0, DC_LUMA) + dht(1, 0, AC_LUMA) + dht(0, 1, DC_CHROMA) + dht(1, 1, AC_CHROMA))
    head += segment(0xDA, bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]))
    return head + bytes(out) + b"\xff\xd9"


WRITERS = {".png": png, ".gif": gif, ".bmp": bmp, ".jpg": jpeg}

if __name__ == "__main__":
    for name, w, h, seed in IMAGES:
        data = WRITERS[os.path.splitext(name)[1]](w, h, scene(w, h, seed))
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        print(f"{name}: {w}x{h}, {len(data)} bytes")

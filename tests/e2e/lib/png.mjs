// A PNG writer for tests: 8-bit RGB, filter 0 rows, zlib-compressed. No image library involved.
import zlib from 'node:zlib';

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(buffers) {
  let c = 0xffffffff;
  for (const buf of buffers) {
    for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeBytes = Buffer.from(type, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32([typeBytes, data]));
  return Buffer.concat([length, typeBytes, data, crc]);
}

// width x height filled with `background` ([r,g,b]) and the rectangle [x0,x1) x [y0,y1) filled
// with `fill`.
export function makePng(width, height, background, fill, [x0, y0, x1, y1]) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    raw[row] = 0;  // filter: none
    for (let x = 0; x < width; x++) {
      const inside = x >= x0 && x < x1 && y >= y0 && y < y1;
      const [r, g, b] = inside ? fill : background;
      raw[row + 1 + x * 3] = r;
      raw[row + 2 + x * 3] = g;
      raw[row + 3 + x * 3] = b;
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;   // bit depth
  header[9] = 2;   // colour type: RGB
  header[10] = 0;  // compression
  header[11] = 0;  // filter method
  header[12] = 0;  // no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// The picture every e2e test sends: white, with a red rectangle in the middle.
export function redRectanglePng(width = 320, height = 240) {
  return makePng(width, height, [255, 255, 255], [220, 20, 20],
                 [Math.floor(width / 4), Math.floor(height / 4),
                  Math.floor(width * 3 / 4), Math.floor(height * 3 / 4)]);
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { decodeInputImage, encodeOutputImage, IMAGE_FORMATS, readImageMetadata } from './image-codec.js';

function gradient(width: number, height: number) {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = x * 8;
      rgb[i + 1] = y * 8;
      rgb[i + 2] = 128;
    }
  }
  return { width, height, rgb };
}

for (const format of IMAGE_FORMATS) {
  test(`${format}: encodes the requested size with the parameters embedded`, async () => {
    const metadata = { prompt: 'a cat, 猫 🐈 "quoted"', seed: 42, steps: 28 };
    const file = await encodeOutputImage(gradient(32, 16), format, { metadata });
    const meta = await sharp(file).metadata();
    assert.equal(meta.format, format);
    assert.equal(meta.width, 32);
    assert.equal(meta.height, 16);
    assert.deepEqual(await readImageMetadata(file), metadata);
  });
}

test('PNG is lossless', async () => {
  const img = gradient(32, 32);
  const file = await encodeOutputImage(img, 'png');
  const { data } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual(new Uint8Array(data), img.rgb);
});

test('bad format and quality are refused with the field named', async () => {
  await assert.rejects(
    encodeOutputImage(gradient(8, 8), 'gif' as 'png'),
    /format: must be one of png, jpeg, webp/,
  );
  await assert.rejects(encodeOutputImage(gradient(8, 8), 'jpeg', { quality: 0 }), /quality/);
});

test('input images are resized to the generation size and alpha is dropped', async () => {
  const rgba = await sharp({
    create: { width: 40, height: 20, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.5 } },
  })
    .png()
    .toBuffer();
  const img = await decodeInputImage(rgba, 64, 32);
  assert.equal(img.width, 64);
  assert.equal(img.height, 32);
  assert.equal(img.rgb.length, 64 * 32 * 3);
  assert.deepEqual([...img.rgb.subarray(0, 3)], [255, 0, 0]);
});

test('non-images and unsupported formats are refused', async () => {
  await assert.rejects(decodeInputImage(Buffer.from('hello'), 64, 64), /image: not a readable image/);
  const gif = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#fff' } })
    .gif()
    .toBuffer();
  await assert.rejects(decodeInputImage(gif, 64, 64), /image: must be PNG, JPEG or WebP, got gif/);
});

import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isPipelineError } from '../../errors.js';
import { buildClipTokenizerJson, loadClipTokenizer, parseClipMerges, parseClipVocab } from './clip.js';
import { readTokenizerFolderConfig } from './config.js';
import type { Sd3Tokenizers } from './index.js';
import { loadSd3Tokenizers } from './index.js';
import { loadT5Tokenizer } from './t5.js';

const assetsDir = fileURLToPath(new URL('../../../assets/sd3-tokenizers/', import.meta.url));
const referencePath = fileURLToPath(new URL('../../../../test/reference/tokens.json', import.meta.url));

interface ReferenceIds {
  input_ids: number[];
}
interface ReferencePrompt {
  text: string;
  clip_l: ReferenceIds;
  clip_g: ReferenceIds;
  t5: ReferenceIds;
}

const WORDS = ['a', 'majestic', 'red', 'fox', 'sitting', 'on', 'mossy', 'rocks', 'under', 'golden', 'light,'];
/** `count` ordinary words, cycling through a fixed list. */
function words(count: number): string {
  return Array.from({ length: count }, (_, i) => WORDS[i % WORDS.length]).join(' ');
}

/** Rejects with a PipelineError of `code` whose message contains `fragment`. */
async function assertPipelineError(promise: Promise<unknown>, code: string, fragment: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isPipelineError(err), `expected a PipelineError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.ok(err.message.includes(fragment), `message ${JSON.stringify(err.message)} lacks ${fragment}`);
    return true;
  });
}

/** A scratch copy of the tokenizer assets that a test may break. */
async function scratchModelDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sd3-tokenizers-'));
  await cp(assetsDir, dir, { recursive: true });
  return dir;
}

describe('loadSd3Tokenizers with the SD3 tokenizer files', () => {
  let tokenizers: Sd3Tokenizers;
  let prompts: [string, ReferencePrompt][];

  before(async () => {
    tokenizers = await loadSd3Tokenizers(assetsDir);
    const reference = JSON.parse(await readFile(referencePath, 'utf8')) as {
      prompts: Record<string, ReferencePrompt>;
    };
    prompts = Object.entries(reference.prompts);
  });

  test('reproduces every reference prompt for CLIP-L, CLIP-G and T5', () => {
    assert.ok(prompts.length >= 3, 'the reference file should hold prompts');
    for (const [name, prompt] of prompts) {
      const ids = tokenizers.tokenize(prompt.text);
      assert.deepEqual(ids.clipL, prompt.clip_l.input_ids, `${name}: clipL`);
      assert.deepEqual(ids.clipG, prompt.clip_g.input_ids, `${name}: clipG`);
      assert.deepEqual(ids.t5, prompt.t5.input_ids, `${name}: t5`);
    }
  });

  test('clipMaxLength is model_max_length of tokenizer_config.json', async () => {
    const config = await readTokenizerFolderConfig(join(assetsDir, 'tokenizer'), {});
    assert.equal(tokenizers.clipMaxLength, config.modelMaxLength);
    assert.equal(tokenizers.clipMaxLength, prompts[0]![1].clip_l.input_ids.length);
  });

  test('an over-long prompt keeps BOS + first content ids + EOS for CLIP and first ids + </s> for T5', async () => {
    const text = words(300);
    const [clipL, clipG, t5] = await Promise.all([
      loadClipTokenizer(join(assetsDir, 'tokenizer')),
      loadClipTokenizer(join(assetsDir, 'tokenizer_2')),
      loadT5Tokenizer(join(assetsDir, 'tokenizer_3')),
    ]);
    const ids = tokenizers.tokenize(text);
    const max = tokenizers.clipMaxLength;
    for (const [name, full, clip] of [
      ['clipL', ids.clipL, clipL],
      ['clipG', ids.clipG, clipG],
    ] as const) {
      const untruncated = clip.encodeContent(text);
      assert.ok(untruncated.length > max, `${name}: the prompt must be longer than ${max} tokens`);
      assert.equal(full.length, max, name);
      assert.equal(full[0], clip.bosId, `${name}: BOS`);
      assert.equal(full[max - 1], clip.eosId, `${name}: last kept id is EOS`);
      assert.deepEqual(full.slice(1, max - 1), untruncated.slice(0, max - 2), `${name}: content prefix`);
    }
    const t5Untruncated = t5.encodeContent(text);
    assert.ok(t5Untruncated.length > 256, 'the prompt must be longer than 256 T5 tokens');
    assert.equal(ids.t5.length, 256);
    assert.equal(ids.t5[255], t5.eosId);
    assert.deepEqual(ids.t5.slice(0, 255), t5Untruncated.slice(0, 255));
  });

  test('maxSequenceLength sets the T5 length only', () => {
    const sign = prompts.find(([name]) => name === 'sign')?.[1];
    assert.ok(sign !== undefined);
    const reference = sign.t5.input_ids;
    const contentLength = reference.indexOf(1) + 1; // ids + </s>

    const short = tokenizers.tokenize(sign.text, { maxSequenceLength: 77 });
    assert.equal(short.t5.length, 77);
    assert.deepEqual(short.t5, reference.slice(0, 77));
    assert.deepEqual(short.clipL, sign.clip_l.input_ids);
    assert.deepEqual(short.clipG, sign.clip_g.input_ids);

    const long = tokenizers.tokenize(sign.text, { maxSequenceLength: 512 });
    assert.equal(long.t5.length, 512);
    assert.deepEqual(long.t5.slice(0, 256), reference);
    assert.deepEqual(long.t5.slice(contentLength), new Array(512 - contentLength).fill(0));

    const truncated = tokenizers.tokenize(words(300), { maxSequenceLength: 77 });
    const full = tokenizers.tokenize(words(300), { maxSequenceLength: 512 });
    assert.equal(truncated.t5[76], 1);
    assert.deepEqual(truncated.t5.slice(0, 76), full.t5.slice(0, 76));

    assert.deepEqual(tokenizers.tokenize(sign.text, { maxSequenceLength: 1 }).t5, [1]);
  });

  test('maxSequenceLength outside 1…512 or not an integer is input_invalid', () => {
    for (const bad of [0, 513, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => tokenizers.tokenize('a cat', { maxSequenceLength: bad }),
        (err: unknown) => isPipelineError(err) && err.code === 'input_invalid' && err.message.includes('512'),
        String(bad),
      );
    }
  });

  test('CLIP-G splits out its added special token "!" (pad, id 0) before BPE, CLIP-L does not', () => {
    // transformers registers every added_tokens_decoder entry of tokenizer_2 (including "!") as a
    // no-split token, so "wow!" is "wow" + "!" there, while CLIP-L merges it into "!</w>".
    const ids = tokenizers.tokenize('wow!');
    const wow = ids.clipL[1];
    assert.deepEqual(ids.clipG.slice(0, 4), [49406, wow, 0, 49407]);
    assert.notEqual(ids.clipL[2], 0);
    assert.equal(ids.clipL[3], 49407);
  });
});

describe('loadSd3Tokenizers options and errors', () => {
  const scratch: string[] = [];
  async function makeScratch(): Promise<string> {
    const dir = await scratchModelDir();
    scratch.push(dir);
    return dir;
  }
  after(async () => {
    await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  test('{ t5: false } gives empty T5 ids and does not read tokenizer_3/', async () => {
    const dir = await makeScratch();
    await rm(join(dir, 'tokenizer_3'), { recursive: true });
    const tokenizers = await loadSd3Tokenizers(dir, { t5: false });
    const ids = tokenizers.tokenize('a photo of a cat');
    assert.deepEqual(ids.t5, []);
    assert.equal(ids.clipL.length, tokenizers.clipMaxLength);
  });

  test('a missing file is model_invalid naming its full path', async () => {
    const dir = await makeScratch();
    const merges = join(dir, 'tokenizer_2', 'merges.txt');
    await rm(merges);
    await assertPipelineError(loadSd3Tokenizers(dir), 'model_invalid', merges);

    const t5Json = join(dir, 'tokenizer_3', 'tokenizer.json');
    await rm(t5Json);
    await assertPipelineError(loadSd3Tokenizers(dir, { t5: false }), 'model_invalid', merges);
    await cp(join(assetsDir, 'tokenizer_2', 'merges.txt'), merges);
    await assertPipelineError(loadSd3Tokenizers(dir), 'model_invalid', t5Json);

    const config = join(dir, 'tokenizer', 'tokenizer_config.json');
    await rm(config);
    await assertPipelineError(loadSd3Tokenizers(dir, { t5: false }), 'model_invalid', config);
  });

  test('a missing tokenizer folder is model_invalid naming it', async () => {
    const dir = await makeScratch();
    const folder = join(dir, 'tokenizer');
    await rm(folder, { recursive: true });
    await assertPipelineError(loadSd3Tokenizers(dir), 'model_invalid', folder);
  });

  test('unparsable JSON is model_invalid naming the file', async () => {
    const dir = await makeScratch();
    const vocab = join(dir, 'tokenizer', 'vocab.json');
    await writeFile(vocab, '{"a": 1,');
    await assertPipelineError(loadSd3Tokenizers(dir), 'model_invalid', vocab);
  });

  test('a merges.txt without its #version header is model_invalid', async () => {
    const dir = await makeScratch();
    const merges = join(dir, 'tokenizer', 'merges.txt');
    const text = await readFile(merges, 'utf8');
    await writeFile(merges, text.slice(text.indexOf('\n') + 1));
    await assertPipelineError(loadSd3Tokenizers(dir, { t5: false }), 'model_invalid', merges);
  });

  test('a CLIP folder with tokenizer.json is loaded from it instead of vocab.json + merges.txt', async () => {
    const dir = await makeScratch();
    const clipG = join(dir, 'tokenizer_2');
    const vocabPath = join(clipG, 'vocab.json');
    const mergesPath = join(clipG, 'merges.txt');
    const vocab = parseClipVocab(JSON.parse(await readFile(vocabPath, 'utf8')), vocabPath);
    const merges = parseClipMerges(await readFile(mergesPath, 'utf8'), mergesPath);
    // A tokenizer.json as tokenizers saves it, without the added tokens (taken from tokenizer_config.json).
    const json = buildClipTokenizerJson({
      vocab,
      merges,
      addedTokens: [],
      unkToken: '<|endoftext|>',
      bos: ['<|startoftext|>', 49406],
      eos: ['<|endoftext|>', 49407],
    });
    await writeFile(join(clipG, 'tokenizer.json'), JSON.stringify(json));
    await rm(vocabPath);
    await rm(mergesPath);

    const fromJson = await loadSd3Tokenizers(dir, { t5: false });
    const fromAssets = await loadSd3Tokenizers(assetsDir, { t5: false });
    for (const text of ['a photo of a cat', 'wow! a sign that says "hello world"', words(120)]) {
      assert.deepEqual(fromJson.tokenize(text).clipG, fromAssets.tokenize(text).clipG, text);
    }
  });
});

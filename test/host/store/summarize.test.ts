import { describe, expect, test } from 'vitest';
import { summarizeResult } from '../../../host/store/store.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('summarizeResult', () => {
  test.each([
    ['an empty result', new Uint8Array(), 256, '(empty)'],
    ['short text as itself', utf8('{"ok":true}'), 256, '{"ok":true}'],
    ['text exactly at the limit as itself', utf8('abcd'), 4, 'abcd'],
    ['long text cut, with its total size in bytes', utf8('abcdefgh'), 4, 'abcd… (8 bytes)'],
    ['multi-byte text cut on a character, size in bytes', utf8('ééééé'), 2, 'éé… (10 bytes)'],
    ['an emoji without splitting its surrogate pair', utf8('😀😀😀'), 1, '😀… (12 bytes)'],
    ['newlines and tabs escaped onto one line', utf8('a\nb\tc\r'), 256, 'a\\nb\\tc\\r'],
    ['invalid UTF-8 as hex', Uint8Array.from([0xff, 0xfe, 0x00]), 256, '(binary, 3 bytes) fffe00'],
    ['text with control characters as hex', Uint8Array.from([0x61, 0x00, 0x62]), 256, '(binary, 3 bytes) 610062'],
    ['long binary cut to maxChars hex digits', Uint8Array.from([1, 2, 3, 4, 5]), 4, '(binary, 5 bytes) 0102…'],
  ])('summarizes %s', (_case, bytes, maxChars, expected) => {
    expect(summarizeResult(bytes, maxChars)).toBe(expected);
  });

  test('keeps the default summary of a 1 MiB result under 300 characters', () => {
    const summary = summarizeResult(new Uint8Array(1024 * 1024).fill(0x61));
    expect(summary).toBe(`${'a'.repeat(256)}… (1048576 bytes)`);
  });

  test.each([0, -1, 1.5, Number.NaN])('rejects maxChars %s', (maxChars) => {
    expect(() => summarizeResult(utf8('x'), maxChars)).toThrow(RangeError);
  });
});

'use strict';
// Text statistics and readability, with Node.js's standard library only.
//
// Words and sentences are found with Intl.Segmenter (Unicode UAX #29 word and sentence
// boundaries, plus ICU dictionaries for Chinese, Japanese, Thai, ...), so counting works in any
// language. Syllables and the Flesch scores use English rules and are reported for English-like
// text only.

const MAX_CHARS = 1_000_000;
const WORDS_PER_MINUTE_READING = 238; // Brysbaert (2019), silent reading of English non-fiction
const WORDS_PER_MINUTE_SPEAKING = 150;

const STOPWORDS = {
  en: 'a about above after again against all am an and any are as at be because been before being below between both but by can could did do does doing down during each few for from further had has have having he her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other our ours ourselves out over own same she should so some such than that the their theirs them themselves then there these they this those through to too under until up very was we were what when where which while who whom why will with would you your yours yourself yourselves',
  fr: "au aux avec ce ces dans de des du elle en et eux il ils je la le les leur lui ma mais me même mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te tes toi ton tu un une vos votre vous c d j l à m n s t y été étée étées étés étant suis es est sommes êtes sont serai sera ai as avons avez ont eu",
  de: 'aber alle als also am an auch auf aus bei bin bis bist da damit dann das dass dem den der des die dir doch du durch ein eine einem einen einer eines er es für hat hatte ich ihr im in ist ja kann kein mich mir mit nach nicht noch nun nur ob oder ohne sein sich sie sind so um und uns von vor war was wenn wer wie wir wird zu zum zur über',
  es: 'a al algo como con de del el ella ellas ellos en entre era es esa ese eso esta este esto fue ha hay la las le les lo los me mi muy más no nos o para pero por que se sin sobre su sus también te tu un una uno y ya yo',
};

function load() {
  const stopwords = new Set();
  const byLanguage = {};
  for (const [language, list] of Object.entries(STOPWORDS)) {
    byLanguage[language] = new Set(list.split(' '));
    for (const word of byLanguage[language]) stopwords.add(word);
  }
  return {
    stopwords,
    byLanguage,
    words: new Intl.Segmenter('und', { granularity: 'word' }),
    sentences: new Intl.Segmenter('und', { granularity: 'sentence' }),
  };
}

// English syllable estimate: vowel groups, minus a silent final "e", at least one.
function syllables(word) {
  let w = word.toLowerCase().replace(/[^a-z]/g, '');
  if (!w) return 0;
  if (w.length <= 3) return 1;
  w = w.replace(/(?:[^laeiouy]es|[^laeiouy]ed|[^laeiouy]e)$/, '').replace(/^y/, '');
  const groups = w.match(/[aeiouy]{1,2}/g);
  return Math.max(1, groups ? groups.length : 0);
}

function round(x, digits = 2) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function readingEase(score) {
  if (score >= 90) return 'very easy';
  if (score >= 80) return 'easy';
  if (score >= 70) return 'fairly easy';
  if (score >= 60) return 'plain English';
  if (score >= 50) return 'fairly difficult';
  if (score >= 30) return 'difficult';
  return 'very difficult';
}

// The language whose function words are most frequent, when that is clear enough.
function guessLanguage(lowercaseWords, byLanguage) {
  let best = null;
  let bestHits = 0;
  let second = 0;
  for (const [language, words] of Object.entries(byLanguage)) {
    const hits = lowercaseWords.reduce((n, w) => n + (words.has(w) ? 1 : 0), 0);
    if (hits > bestHits) [best, bestHits, second] = [language, hits, bestHits];
    else if (hits > second) second = hits;
  }
  return bestHits >= 2 && bestHits >= 1.5 * second ? best : null;
}

function parse(input) {
  if (Buffer.isBuffer(input)) throw new Error('send text (text/plain) or JSON, not binary data');
  let options = {};
  let text = input;
  if (input && typeof input === 'object' && !Array.isArray(input)) {
    options = input;
    text = input.text;
  }
  if (typeof text !== 'string') throw new Error('expected a text, or {"text": "...", "top": 10}');
  if (!text.trim()) throw new Error('the text is empty');
  if (text.length > MAX_CHARS) throw new Error(`the text is longer than ${MAX_CHARS} characters`);
  const top = options.top === undefined ? 10 : options.top;
  if (!Number.isInteger(top) || top < 0 || top > 100) throw new Error('"top" must be an integer from 0 to 100');
  const excludeStopwords = options.exclude_stopwords === undefined ? true : options.exclude_stopwords;
  if (typeof excludeStopwords !== 'boolean') throw new Error('"exclude_stopwords" must be true or false');
  return { text, top, excludeStopwords };
}

function apply(input, state) {
  const { text, top, excludeStopwords } = parse(input);
  const words = [];
  for (const segment of state.words.segment(text)) if (segment.isWordLike) words.push(segment.segment);
  const sentences = [...state.sentences.segment(text)].filter((s) => /[\p{L}\p{N}]/u.test(s.segment));
  const paragraphs = text.split(/\n\s*\n/).filter((p) => p.trim()).length;

  const lowercase = words.map((w) => w.toLocaleLowerCase().replace('’', "'"));
  const language = guessLanguage(lowercase, state.byLanguage);
  const latin = words.filter((w) => /^[A-Za-z][A-Za-z'’-]*$/.test(w));
  // Flesch's formulas and the syllable rules are English ones
  const englishLike = latin.length / words.length >= 0.8 && (language === 'en' || language === null);
  const frequencies = new Map();
  for (const word of words) {
    const key = word.toLocaleLowerCase();
    if (/^\p{N}+$/u.test(key)) continue; // numbers are not vocabulary
    if (excludeStopwords && state.stopwords.has(key.replace('’', "'"))) continue;
    frequencies.set(key, (frequencies.get(key) || 0) + 1);
  }
  const unique = new Set(lowercase);
  const letters = words.reduce((n, w) => n + [...w].length, 0);

  const result = {
    characters: [...text].length,
    characters_no_spaces: [...text.replace(/\s/gu, '')].length,
    words: words.length,
    unique_words: unique.size,
    lexical_diversity: words.length ? round(unique.size / words.length, 4) : 0,
    sentences: sentences.length,
    paragraphs,
    language_guess: language,
    average_word_length: words.length ? round(letters / words.length) : 0,
    average_sentence_length: sentences.length ? round(words.length / sentences.length) : 0,
    reading_time_seconds: Math.round((words.length / WORDS_PER_MINUTE_READING) * 60),
    speaking_time_seconds: Math.round((words.length / WORDS_PER_MINUTE_SPEAKING) * 60),
    top_words: [...frequencies.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, top)
      .map(([word, count]) => ({ word, count })),
    readability: null,
  };
  if (englishLike && sentences.length) {
    const syllableCount = latin.reduce((n, w) => n + syllables(w), 0);
    const wordsPerSentence = latin.length / sentences.length;
    const syllablesPerWord = syllableCount / latin.length;
    const ease = 206.835 - 1.015 * wordsPerSentence - 84.6 * syllablesPerWord;
    result.readability = {
      syllables: syllableCount,
      flesch_reading_ease: round(ease, 1),
      flesch_kincaid_grade: round(0.39 * wordsPerSentence + 11.8 * syllablesPerWord - 15.59, 1),
      interpretation: readingEase(ease),
    };
  }
  return result;
}

module.exports = { apply, load };

"""Seeded generator of a large labeled news-like corpus (AG News layout) whose vocabulary grows.

    python benchmarks/corpus.py --out DIR --train-docs N [--test-docs M] [--classes K] [--seed S] [--stats]

For measuring model size, memory and start-up on large corpora: repeating the rows of a small
corpus adds no new words, while real text keeps meeting new ones (Heaps' law). Here every
document is drawn afresh, so the vocabulary and the bigram count grow with the corpus. Not
part of the installed package.

Command line
    --out DIR         writes DIR/train.csv, DIR/test.csv, DIR/classes.txt (the folder is made)
    --train-docs N    rows in train.csv (N >= 1)
    --test-docs M     rows in test.csv (default 7600, the size of AG News' test set)
    --classes K       number of classes (default 4; K >= 2). classes.txt names them World,
                      Sports, Business, SciTech for K = 4, else Topic1..TopicK
    --seed S          random seed (default 0; S >= 0)
    --stats           then print, on stdout, docs, tokens, distinct tokens, distinct bigrams and
                      mean tokens per document of train.csv (see corpus_stats)
Progress ("wrote DIR in Ts") goes to stderr.

Output: the AG News layout that ``classify prepare --from DIR`` reads: no header, 3 columns
(class index 1..K, title, description), every field double-quoted (csv.QUOTE_ALL; no field
holds a quote), ``\n`` line ends, UTF-8 (ASCII in fact). prepare carves validation from train.

Determinism: the same seed and arguments give the same bytes (with the same numpy: the draws
come from numpy's PCG64 Generator). Split s (0 train, 1 test) is written in chunks of
CHUNK_DOCS = 25,000 rows; chunk i draws from ``default_rng([seed, s, i])`` and is always drawn
whole, so test.csv does not depend on --train-docs and a smaller train.csv is exactly the first
rows of a larger one (the 120k corpus is the head of the 1M corpus).

The model (CorpusSpec holds every knob; only ``classes`` is on the command line)
    Vocabulary: vocab_size = 2**21 = 2,097,152 word types, rank 0 the most frequent. The word
        of a rank is fixed by the rank alone (not the seed): syllables = a consonant onset (19
        letters, 20 clusters) + a vowel nucleus (5 vowels, 5 pairs), lowercase a-z only, so
        basic_english keeps each word as one token; splitting at vowel->consonant changes
        recovers the parts, so the 2,097,152 words are distinct. Frequent ranks are short:
        ranks < 3,025 have one syllable + a coda (3-6 letters; the top 100 have 3), ranks
        < 1,219,825 two syllables + an optional coda (4-10; up to rank 50,000 4-5), the rest
        three syllables (6-12, mean 9.0). Equal lengths are ordered by a fixed hash.
    Background law, over all ranks r = 1..vocab_size: a two-regime Zipf-Mandelbrot law,
        weight (r + shift)^-head_exponent up to head_ranks, then continued as r^-tail_exponent:
        head_exponent 1.05, shift 2.7, head_ranks 10,000, tail_exponent 1.7. The head holds
        87.7% of the tokens (top word 3.6%, top 10 18%, top 100 42%). Real text does this:
        Zipf's exponent about 1 for its core vocabulary, steeper for the rare words
        (Ferrer i Cancho & Sole 2001). A single exponent of 1.05 over 2M types would give about
        660k distinct tokens at 120k documents and 1.8M at 1M, far more than real text; the
        steeper tail brings these to the targets below.
    Topics: each word is, with topic_prob = 0.2, drawn from a topic law instead of the
        background. Topic c's j-th word is vocabulary rank function_words + j*K + c
        (function_words = 100: the commonest ranks belong to no topic, and topics share no
        word), j from a Zipf law over topic_size = (vocab_size - 100) // K ranks (524,263 for
        K = 4) with exponent 1.05 up to topic_head_ranks = 2,000 and tail_exponent beyond (no
        shift: the top topic word is 12.7% of its topic's draws). A topic word is the
        document's own class's, or with secondary_prob = 0.15 that of one other class drawn
        uniformly per document: news items that touch two topics, as AG News' Business and
        Sci/Tech do; that is the knob that sets how separable the classes are.
    Classes: balanced within each chunk (a shuffled K-cycle), so nearly balanced overall.
    Shape: a title of title_words = 6..10 words (uniform), a description of description_words
        = 25..40 words (uniform). After each description word but the last: ", " with
        comma_prob = 0.035, ". " with period_prob = 0.02; the description ends with ".". Field
        and sentence starts are capitalized (basic_english lower-cases them back). That gives
        43.2 basic_english tokens per row (title + " " + description); real AG News' test
        set measures 43.0 with the same tokenizer.

Calibration, measured 2026-11-29 (2 cores, 24 GiB, numpy 2.4.6), seed 0, K = 4, with the
project's basic_english tokenizer (clean_text) over title + " " + description; bigrams are
adjacent token pairs within one document, punctuation tokens included:

    train docs   tokens      distinct tokens   distinct bigrams   generate (wall)
    7,600        327,595     36,924            239,970
    30,000       1,297,084   82,002            815,837
    120,000      5,188,108   179,133           2,680,918          2.9-3.4 s (peak RSS 316 MB)
    300,000      12,970,577  295,919           5,746,630
    1,000,000    43,235,193  555,767           15,186,842         12.6-14.2 s (peak RSS 316 MB)

Heaps' exponent (distinct ~ tokens^beta): 0.57 from 7.6k to 120k docs, 0.53 from 120k to 1M.
For scale, AG News' real 7,600-row test set has 326,735 tokens, 24,566 distinct tokens and
161,926 distinct bigrams.

Linear baseline (scikit-learn 1.9.1; TfidfVectorizer(sublinear_tf=True), default word
pattern, fitted on the first N rows of train.csv, scored on the 7,600 rows of test.csv):
LinearSVC(C=1) 0.878 and LogisticRegression(C=10) 0.879 at N = 20,000; both 0.891 at
N = 120,000. With topic_prob 0.25 / secondary_prob 0.10 it reaches 0.956, with 0.12 / 0.25
only 0.63; 0.2 / 0.12 gives 0.896.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# --- spelling: rank -> pseudo-word ------------------------------------------------------------
# A word is syllables (a consonant run, then a vowel run) and maybe a final consonant run, so
# splitting a word at each vowel->consonant change recovers its parts: distinct parts give
# distinct words, and every word is lowercase a-z only (one basic_english token).
ONSETS = "b c d f g h j k l m n p r s t v w y z bl br ch cl cr dr fl fr gl gr pl pr sh sk sl sp st th tr wh".split()
NUCLEI = "a e i o u ai ea ee oo ou".split()
CODAS = ["", *"n r s t l nd st".split()]
MAX_WORD_LEN = 12
_SYLLABLES = len(ONSETS) * len(NUCLEI)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A fixed integer hash (numpy-version independent), to order words of equal length."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _syllable_strings() -> np.ndarray:
    return np.array([o + n for o in ONSETS for n in NUCLEI], dtype="S4")


def _enumerated_words(syllables: int) -> np.ndarray:
    """Every word of ``syllables`` syllables plus a coda, shortest first (ties in hashed order)."""
    syl = _syllable_strings()
    codas = np.array(CODAS, dtype="S2")
    n = _SYLLABLES**syllables * len(codas)
    index = np.arange(n, dtype=np.int64)
    words = codas[index % len(codas)]
    rest = index // len(codas)
    for _ in range(syllables):
        words = np.char.add(syl[rest % _SYLLABLES], words)
        rest //= _SYLLABLES
    lengths = np.char.str_len(words)
    keep = lengths >= 3  # "ba" and the like: shorter than any real content word we want
    words, lengths, index = words[keep], lengths[keep], index[keep]
    return words[np.lexsort((_splitmix64(index), lengths))]


def _three_syllable_words(count: int) -> np.ndarray:
    """``count`` distinct 3-syllable words (6-12 letters, no coda) in a scrambled order."""
    space = _SYLLABLES**3
    # an affine map with a multiplier coprime to ``space`` is a bijection of range(space)
    multiplier = 2_654_435_761  # prime, and larger than ``space``'s prime factors (2, 3, 5, 13)
    index = (np.arange(count, dtype=np.int64) * multiplier + 12_345) % space
    syl = _syllable_strings()
    words = syl[index % _SYLLABLES]
    for _ in range(2):
        index //= _SYLLABLES
        words = np.char.add(syl[index % _SYLLABLES], words)
    return words


def spell_vocabulary(size: int) -> np.ndarray:
    """The word of each rank 0..size-1 (``S12`` array): 1 syllable (3-6 letters) for the first
    ~3,000 ranks, 2 syllables (4-10) up to ~1.2M, then 3 syllables (6-12); shorter first."""
    parts = [_enumerated_words(1), _enumerated_words(2)]
    have = sum(len(p) for p in parts)
    if size > have:
        parts.append(_three_syllable_words(size - have))
    return np.concatenate(parts)[:size].astype(f"S{MAX_WORD_LEN}")


# --- the model ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorpusSpec:
    """Every knob of the corpus; the defaults are the calibrated ones (see the module docstring)."""

    classes: int = 4
    vocab_size: int = 1 << 21
    head_exponent: float = 1.05
    head_ranks: int = 10_000
    tail_exponent: float = 1.7
    shift: float = 2.7
    function_words: int = 100
    topic_prob: float = 0.2
    topic_head_ranks: int = 2_000
    secondary_prob: float = 0.15
    title_words: tuple[int, int] = (6, 10)
    description_words: tuple[int, int] = (25, 40)
    comma_prob: float = 0.035
    period_prob: float = 0.02

    @property
    def topic_size(self) -> int:
        return (self.vocab_size - self.function_words) // self.classes


def zipf_cdf(size: int, exponent: float, head_ranks: int, tail_exponent: float, shift: float) -> np.ndarray:
    """Cumulative weights of a two-regime Zipf-Mandelbrot law over ranks 1..size:
    (r + shift)^-exponent up to ``head_ranks``, continued by r^-tail_exponent beyond."""
    r = np.arange(1, size + 1, dtype=np.float64)
    head = (r + shift) ** -exponent
    tail = (head_ranks + shift) ** -exponent * (r / head_ranks) ** -tail_exponent
    return np.cumsum(np.where(r <= head_ranks, head, tail))


class Tables:
    """What every chunk needs: the byte pieces a document is built from and the samplers' CDFs."""

    # special pieces, after the vocabulary's words
    SPACE, COMMA, PERIOD, FIELD, END = range(5)

    def __init__(self, spec: CorpusSpec):
        self.spec = spec
        words = spell_vocabulary(spec.vocab_size)
        specials = [b" ", b", ", b". ", b'","', b'."\n']
        prefixes = [f'"{c}","'.encode() for c in range(1, spec.classes + 1)]
        matrix = words.view(np.uint8).reshape(len(words), MAX_WORD_LEN)
        extra = np.frombuffer(b"".join(specials + prefixes), dtype=np.uint8)
        # row-major boolean indexing concatenates the words without a Python loop
        self.buf = np.concatenate([matrix[matrix != 0], extra])
        lens = np.concatenate([(matrix != 0).sum(axis=1), [len(p) for p in specials + prefixes]])
        self.lens = lens.astype(np.int64)
        self.starts = np.cumsum(self.lens) - self.lens
        self.special = spec.vocab_size
        self.prefix = spec.vocab_size + len(specials)
        self.background = zipf_cdf(spec.vocab_size, spec.head_exponent, spec.head_ranks, spec.tail_exponent, spec.shift)
        self.topic = zipf_cdf(spec.topic_size, spec.head_exponent, spec.topic_head_ranks, spec.tail_exponent, 0.0)


def _sample(cdf: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """n ranks (0-based) drawn by inverse CDF."""
    ranks = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    return np.minimum(ranks, len(cdf) - 1)


@dataclass
class Documents:
    """n sampled documents: labels, and per word (all documents end to end) its vocabulary rank
    and the piece that follows it; the title is the first title[i] words of document i."""

    labels: np.ndarray
    title: np.ndarray
    lens: np.ndarray
    ids: np.ndarray
    sep: np.ndarray


def sample_documents(tables: Tables, rng: np.random.Generator, n: int) -> Documents:
    """Draw n documents' labels, lengths, words and punctuation, all vectorized."""
    spec = tables.spec
    k = spec.classes
    labels = rng.permutation(np.arange(n) % k)  # balanced within a chunk, like AG News
    second = (labels + 1 + rng.integers(k - 1, size=n)) % k  # another topic, for ambiguous documents
    title = rng.integers(spec.title_words[0], spec.title_words[1] + 1, size=n)
    lens = title + rng.integers(spec.description_words[0], spec.description_words[1] + 1, size=n)
    total = int(lens.sum())
    starts = np.cumsum(lens) - lens
    doc = np.repeat(np.arange(n), lens)

    # each word: the background law, or (with topic_prob) a topic law, mostly the document's own
    ids = _sample(tables.background, rng, total)
    topical = np.flatnonzero(rng.random(total) < spec.topic_prob)
    d = doc[topical]
    topic = np.where(rng.random(len(topical)) < spec.secondary_prob, second[d], labels[d])
    # topic c's j-th word is vocabulary rank function_words + j*k + c: topics never share a word
    ids[topical] = spec.function_words + _sample(tables.topic, rng, len(topical)) * k + topic

    sep = np.full(total, tables.special + Tables.SPACE)
    u = rng.random(total)
    in_desc = np.arange(total) - starts[doc] >= title[doc]
    sep[in_desc & (u < spec.comma_prob)] = tables.special + Tables.COMMA
    sep[in_desc & (u >= spec.comma_prob) & (u < spec.comma_prob + spec.period_prob)] = tables.special + Tables.PERIOD
    sep[starts + title - 1] = tables.special + Tables.FIELD
    sep[starts + lens - 1] = tables.special + Tables.END
    return Documents(labels, title, lens, ids, sep)


def render(tables: Tables, docs: Documents) -> bytes:
    """The documents as AG News CSV rows (QUOTE_ALL, ``\\n`` line ends), by one byte gather."""
    n, total = len(docs.lens), len(docs.ids)
    starts = np.cumsum(docs.lens) - docs.lens
    doc = np.repeat(np.arange(n), docs.lens)
    # the piece sequence: per document its prefix, then word, separator, word, separator ...
    word_slot = 2 * np.arange(total) + doc + 1
    seq = np.empty(2 * total + n, dtype=np.int64)
    seq[word_slot] = docs.ids
    seq[word_slot + 1] = docs.sep
    seq[2 * starts + np.arange(n)] = tables.prefix + docs.labels
    plen = tables.lens[seq]
    offset = np.cumsum(plen) - plen
    out = tables.buf[np.repeat(tables.starts[seq] - offset, plen) + np.arange(int(plen.sum()))]

    # capitals where a field or a sentence starts; basic_english lower-cases them back
    after_period = np.flatnonzero(docs.sep[:-1] == tables.special + Tables.PERIOD) + 1
    capital = np.concatenate([starts, starts + docs.title, after_period])
    out[offset[word_slot[capital]]] -= 32
    return out.tobytes()


CHUNK_DOCS = 25_000


def write_split(path: Path, tables: Tables, seed: int, split: int, n_docs: int) -> None:
    """Stream n_docs rows to path, chunk by chunk. Chunk i draws from its own seeded stream and
    is always generated whole, so a corpus is a prefix of any larger one with the same seed."""
    with path.open("wb") as f:
        for i, first in enumerate(range(0, n_docs, CHUNK_DOCS)):
            rng = np.random.default_rng([seed, split, i])
            data = render(tables, sample_documents(tables, rng, CHUNK_DOCS))
            if first + CHUNK_DOCS > n_docs:  # the last chunk: keep its first rows only
                line_ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == ord("\n"))
                data = data[: line_ends[n_docs - first - 1] + 1]
            f.write(data)


def class_names(k: int) -> list[str]:
    return ["World", "Sports", "Business", "SciTech"] if k == 4 else [f"Topic{c}" for c in range(1, k + 1)]


def write_corpus(out: Path, train_docs: int, test_docs: int, spec: CorpusSpec, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tables = Tables(spec)
    write_split(out / "train.csv", tables, seed, 0, train_docs)
    write_split(out / "test.csv", tables, seed, 1, test_docs)
    (out / "classes.txt").write_text("".join(name + "\n" for name in class_names(spec.classes)))


# --- stats -------------------------------------------------------------------------------------
def corpus_stats(path: Path, check_rows: int = 2_000) -> dict[str, float]:
    """Docs, tokens, distinct tokens and distinct adjacent bigrams (within title + " " +
    description) under the project's tokenizer. Counts on its bytes twin (make_normalizer),
    checked against make_tokenizer on the first check_rows rows."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's package, installed or not
    from classify_cli.text.tokens import make_normalizer, make_tokenizer

    spec = {"name": "basic_english", "clean_text": True}
    tokenize, normalize = make_tokenizer(spec), make_normalizer(spec)
    index: dict[bytes, int] = {}
    bigram_parts, docs, tokens = [], 0, 0
    with path.open(newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        while True:
            batch = [row[1] + " " + row[2] for row in itertools.islice(rows, 50_000)]
            if not batch:
                break
            if docs < check_rows:
                for text in batch[: check_rows - docs]:
                    if [t.decode() for t in normalize(text).split()] != tokenize(text):
                        raise AssertionError(f"fast tokenizer disagrees on {text!r}")
            ids, ends = [], []
            for text in batch:
                ids.extend([index.setdefault(t, len(index)) for t in normalize(text).split()])
                ends.append(len(ids))
            a = np.array(ids, dtype=np.int64)
            pair = a[:-1] << 32 | a[1:]
            inside = np.ones(len(pair), dtype=bool)
            inside[np.array(ends[:-1]) - 1] = False  # a pair across two documents is no bigram
            bigram_parts.append(np.unique(pair[inside]))
            docs += len(batch)
            tokens += len(ids)
    bigrams = len(np.unique(np.concatenate(bigram_parts))) if bigram_parts else 0
    return {
        "docs": docs,
        "tokens": tokens,
        "distinct_tokens": len(index),
        "distinct_bigrams": bigrams,
        "mean_tokens_per_doc": tokens / max(docs, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for train.csv, test.csv, classes.txt")
    parser.add_argument("--train-docs", type=int, required=True, help="rows in train.csv")
    parser.add_argument("--test-docs", type=int, default=7_600, help="rows in test.csv (default 7600)")
    parser.add_argument("--classes", type=int, default=4, help="number of classes (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--stats", action="store_true", help="print token statistics of train.csv")
    args = parser.parse_args(argv)
    if args.train_docs < 1 or args.test_docs < 1 or args.classes < 2 or args.seed < 0:
        parser.error("--train-docs and --test-docs must be >= 1, --classes >= 2, --seed >= 0")
    start = time.perf_counter()
    write_corpus(args.out, args.train_docs, args.test_docs, CorpusSpec(classes=args.classes), args.seed)
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    if args.stats:
        for key, value in corpus_stats(args.out / "train.csv").items():
            print(f"{key}\t{value:.2f}" if isinstance(value, float) else f"{key}\t{value}")


if __name__ == "__main__":
    main()

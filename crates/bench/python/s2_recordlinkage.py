#!/usr/bin/env python3
"""S2 baseline: the `recordlinkage` library (PyPI) on the same evaluation pairs as tsunagu's
search, run by `tsunagu-bench search --only s2` as a subprocess.

Usage: s2_recordlinkage.py POPULATION.csv QUERIES.csv RESULTS.csv

POPULATION.csv: id,family,given,family_kana,given_kana,birth,sex  (birth as YYYY-MM-DD)
QUERIES.csv:    qid,kind,q,birth                                   (as typed: any script/form)
RESULTS.csv:    qid,ids  (the 10 best record ids, best first, space-separated)

What the library gets is the usual set-up for a record-linkage run, with the preprocessing a
user of a generic library would do for Japanese text:
- preprocessing: Unicode NFKC and whitespace removed, on both sides (no hiragana/katakana
  folding, no kanji variant tables, no era dates: the library has none of them);
- indexing (blocking): the union of three blocks — same birth date (as text), same full name,
  same full reading — since a full comparison of every query with every record is out of reach;
- comparison: Jaro-Winkler similarity (recordlinkage.Compare.string, jellyfish: Python
  strings, so characters, not bytes) of the typed name against the record's name and reading,
  and exact birth date;
- score: max(name similarity, reading similarity) + birth date equal; the 10 best per query,
  ties broken by record id.

Prints one JSON line with the library versions, the number of candidate pairs and timings.
"""

import csv
import json
import sys
import time
import unicodedata


def fail(msg):
    print(json.dumps({"error": msg}))
    sys.exit(3)


try:
    import pandas as pd
    import recordlinkage as rl
except ImportError as e:  # pragma: no cover - reported to the Rust side
    fail(
        f"{e}: install the library with `python3 -m pip install recordlinkage` "
        "(or point --s2-python at an interpreter that has it)"
    )


def norm(s):
    s = unicodedata.normalize("NFKC", s or "")
    return "".join(ch for ch in s if not ch.isspace())


def main():
    if len(sys.argv) != 4:
        fail(__doc__)
    pop_path, q_path, out_path = sys.argv[1:]
    t0 = time.perf_counter()
    pop = pd.read_csv(pop_path, dtype=str, keep_default_na=False)
    qs = pd.read_csv(q_path, dtype=str, keep_default_na=False)
    pop["id"] = pop["id"].astype("int64")
    pop = pop.set_index("id")
    qs["qid"] = qs["qid"].astype("int64")
    qs = qs.set_index("qid")

    pop["name"] = (pop["family"] + pop["given"]).map(norm)
    pop["kana"] = (pop["family_kana"] + pop["given_kana"]).map(norm)
    pop["bd"] = pop["birth"].map(norm)
    qs["name"] = qs["q"].map(norm)
    qs["kana"] = qs["name"]
    qs["bd"] = qs["birth"].map(norm)
    # Empty values must not block together.
    pop.loc[pop["kana"] == "", "kana"] = "\x00no-reading"
    pop.loc[pop["bd"] == "", "bd"] = "\x00no-birth"
    t_load = time.perf_counter() - t0

    t1 = time.perf_counter()
    indexer = rl.Index()
    indexer.block(left_on="bd", right_on="bd")
    indexer.block(left_on="name", right_on="name")
    indexer.block(left_on="kana", right_on="kana")
    pairs = indexer.index(qs, pop)
    t_index = time.perf_counter() - t1

    t2 = time.perf_counter()
    cmp = rl.Compare()
    cmp.string("name", "name", method="jarowinkler", label="name")
    cmp.string("kana", "kana", method="jarowinkler", label="kana")
    cmp.exact("bd", "bd", label="birth")
    feats = cmp.compute(pairs, qs, pop)
    t_compare = time.perf_counter() - t2

    t3 = time.perf_counter()
    feats = feats.fillna(0.0)
    feats["score"] = feats[["name", "kana"]].max(axis=1) + feats["birth"]
    ranked = feats.reset_index()
    ranked.columns = ["qid", "id"] + list(ranked.columns[2:])
    ranked = ranked.sort_values(["qid", "score", "id"], ascending=[True, False, True])
    top = ranked.groupby("qid", sort=False).head(10)
    best = top.groupby("qid", sort=False)["id"].apply(lambda s: " ".join(str(i) for i in s))
    with open(out_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["qid", "ids"])
        for qid in qs.index:
            w.writerow([qid, best.get(qid, "")])
    t_rank = time.perf_counter() - t3

    try:
        import jellyfish  # noqa: F401
        from importlib.metadata import version

        jf = version("jellyfish")
    except Exception:  # pragma: no cover
        jf = None
    print(
        json.dumps(
            {
                "recordlinkage": rl.__version__,
                "pandas": pd.__version__,
                "jellyfish": jf,
                "python": sys.version.split()[0],
                "population": int(len(pop)),
                "queries": int(len(qs)),
                "pairs": int(len(pairs)),
                "secs_load": round(t_load, 2),
                "secs_index": round(t_index, 2),
                "secs_compare": round(t_compare, 2),
                "secs_rank": round(t_rank, 2),
            }
        )
    )


if __name__ == "__main__":
    main()

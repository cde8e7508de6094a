#!/usr/bin/env python3
"""Generate the ICD-10-CM code set embedded in `ro-tasks` (ro-tasks/data/icd10cm.tsv.gz).

Source: the CMS/NCHS ICD-10-CM tabular list, April 1 2026 release
(`icd10c-tabular-April-1-2026.xml` and `code-list-April-2026.txt`), as shipped inside the
PyPI package simple-icd-10-cm 1.5.0 (pinned in requirements.txt beside this script). The tree,
including the 7th-character "extended subcategory" codes, is taken exactly as that package
builds it.

Output: a gzip'd (mtime 0, so byte-for-byte reproducible) UTF-8 TSV, one row per node in the
package's depth-first order, columns:

    code    kind    leaf    parent    description

kind: C chapter, B block (section), K category, S subcategory, X extended subcategory
(7th character). leaf: 1 when the node has no children (for K/S/X that is a billable code).
parent: the parent's name ("" for chapters). Names are as in the package: chapters are "1".."22",
blocks "C00-C14", codes with a dot "C34.11". A block holding a single category shares its name
(e.g. "B99"): both rows are written, block first. Descriptions are backslash-escaped
(\\ \t \n \r): about 500 descriptions in the release contain a tab character.

Run:  python3 tools/icd10/generate_codeset.py   (from the repository root)
"""
import gzip
import io
import os
import sys

import simple_icd_10_cm as cm
from simple_icd_10_cm import simple_icd_10_cm as impl

RELEASE = "ICD-10-CM April 1 2026 (simple-icd-10-cm 1.5.0)"
KIND = {"chapter": "C", "section": "B", "category": "K", "subcategory": "S",
        "extended subcategory": "X"}


def escape(text):
    """Backslash-escape the characters TSV cannot hold (some descriptions contain tabs)."""
    return (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def walk(node, out):
    parent = node.parent.name if node.parent is not None else ""
    desc = node.description
    for field in (node.name, parent):
        if any(ch in field for ch in "\t\n\r\\"):
            sys.exit(f"unexpected control character in code {node.name!r}")
    out.append("\t".join([node.name, KIND[node.type], "1" if not node.children else "0",
                          parent, escape(desc)]))
    for child in node.children:
        walk(child, out)


def main():
    rows = []
    for chapter in impl._chapter_list:
        walk(chapter, rows)
    text = f"# {RELEASE}\n# code\tkind\tleaf\tparent\tdescription\n" + "\n".join(rows) + "\n"
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    path = os.path.join(root, "ro-tasks", "data", "icd10cm.tsv.gz")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as f:
        f.write(text.encode("utf-8"))
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    print(f"{len(rows)} rows, {len(text.encode())} bytes raw, {len(buf.getvalue())} gzip -> {path}")


if __name__ == "__main__":
    main()

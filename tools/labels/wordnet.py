"""Just enough of the WordNet 3.0 database (Debian `wordnet-base`) to walk noun hypernyms."""
import os

WORDNET_DIR = os.environ.get("WORDNET_DIR", "/usr/share/wordnet")


class WordNet:
    def __init__(self, directory=WORDNET_DIR):
        self.synsets = {}  # offset -> (lemmas, hypernym offsets, gloss)
        with open(os.path.join(directory, "data.noun"), encoding="latin-1") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                head, _, gloss = line.partition("|")
                parts = head.split()
                offset = parts[0]
                w_cnt = int(parts[3], 16)
                lemmas = [parts[4 + 2 * i].replace("_", " ") for i in range(w_cnt)]
                i = 4 + 2 * w_cnt
                p_cnt = int(parts[i])
                hypernyms = []
                for j in range(p_cnt):
                    symbol, target, pos = parts[i + 1 + 4 * j: i + 4 + 4 * j]
                    if symbol in ("@", "@i") and pos == "n":
                        hypernyms.append(target)
                self.synsets[offset] = (lemmas, hypernyms, gloss.strip())
        self.senses = {}  # lemma -> offsets in sense order
        with open(os.path.join(directory, "index.noun"), encoding="latin-1") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                parts = line.split()
                lemma, synset_cnt = parts[0], int(parts[2])
                self.senses[lemma] = parts[-synset_cnt:]

    def resolve(self, name):
        """'domestic_cat.n.01' -> offset."""
        lemma, pos, number = name.rsplit(".", 2)
        assert pos == "n", name
        return self.senses[lemma.lower()][int(number) - 1]

    def lemmas(self, offset):
        return self.synsets[offset][0]

    def gloss(self, offset):
        return self.synsets[offset][2]

    def ancestors(self, offset):
        """Every hypernym, transitively, along all paths."""
        seen, stack = set(), list(self.synsets[offset][1])
        while stack:
            o = stack.pop()
            if o not in seen:
                seen.add(o)
                stack.extend(self.synsets[o][1])
        return seen

//! Bit-parallel longest common subsequence (Allison & Dix 1986; Crochemore et al. 2001).
//!
//! Row `i` of the LCS table of `a` against `b` is kept as a bit vector `V_i` over the
//! positions of `b`: bit `j` is 0 exactly when `t[i][j + 1] = t[i][j] + 1`, so
//! `t[i][j]` is the number of zero bits below position `j`. With `M[x]` the positions of
//! `x` in `b`, one row follows from the previous one in a few word operations:
//! `U = V & M[a_i]`, `V' = (V + U) | (V & !U)`. The rows are enough to replay
//! rouge-score's backtracking (`_backtrack_norec`) exactly. `reference::lcs_table` is the
//! plain table this replaces; the tests compare the two.

/// The match masks `M[x]` of a sequence over the symbols `0..alphabet`, `words` 64-bit
/// words per symbol. The buffer is kept all-zero between uses, so building and clearing
/// cost only the length of the sequence.
#[derive(Debug, Default)]
pub(super) struct MatchMasks {
    words: usize,
    len: usize,
    bits: Vec<u64>,
}

impl MatchMasks {
    /// Sets the masks of `b`. Every symbol must be below `alphabet`.
    pub(super) fn build(&mut self, b: &[u32], alphabet: usize) {
        self.words = b.len().div_ceil(64).max(1);
        self.len = b.len();
        let needed = alphabet * self.words;
        if self.bits.len() < needed {
            self.bits.resize(needed, 0);
        }
        for (j, &x) in b.iter().enumerate() {
            self.bits[x as usize * self.words + j / 64] |= 1 << (j % 64);
        }
    }

    /// Zeroes the masks of `b` again (the sequence given to the last `build`).
    pub(super) fn clear(&mut self, b: &[u32]) {
        for &x in b {
            let start = x as usize * self.words;
            self.bits[start..start + self.words].fill(0);
        }
    }

    fn of(&self, x: u32) -> &[u64] {
        let start = x as usize * self.words;
        &self.bits[start..start + self.words]
    }
}

/// Advances the row `v` by one symbol; returns whether the symbol matched anywhere.
#[inline]
fn advance(v: &mut [u64], m: &[u64]) -> bool {
    if let ([vk], [mk]) = (&mut *v, m) {
        let u = *vk & mk;
        *vk = vk.wrapping_add(u) | (*vk & !u);
        return u != 0;
    }
    let mut carry = false;
    let mut any = 0;
    for (vk, &mk) in v.iter_mut().zip(m) {
        let u = *vk & mk;
        any |= u;
        let (sum, c1) = vk.overflowing_add(u);
        let (sum, c2) = sum.overflowing_add(u64::from(carry));
        carry = c1 || c2;
        *vk = sum | (*vk & !u);
    }
    any != 0
}

/// The number of zero bits of `row` below position `j`: `t[i][j]`.
#[inline]
fn zeros_below(row: &[u64], j: usize) -> usize {
    let (full, rest) = (j / 64, j % 64);
    let mut ones: usize = row[..full].iter().map(|w| w.count_ones() as usize).sum();
    if rest > 0 {
        ones += (row[full] & ((1u64 << rest) - 1)).count_ones() as usize;
    }
    j - ones
}

/// The LCS length of `a` against the sequence whose masks are `masks`. `row` is scratch.
pub(super) fn lcs_length(a: &[u32], masks: &MatchMasks, row: &mut Vec<u64>) -> usize {
    row.clear();
    row.resize(masks.words, !0);
    for &x in a {
        advance(row, masks.of(x));
    }
    zeros_below(row, masks.len)
}

/// rouge-score's `lcs_ind(a, b)`: calls `mark(i)` for the index in `a` of every element
/// of the LCS that `_backtrack_norec` reads out (from the last to the first). `masks`
/// must be those of `b`; `rows` is scratch for the `|a| + 1` rows.
pub(super) fn lcs_indices(
    a: &[u32],
    b: &[u32],
    masks: &MatchMasks,
    rows: &mut Vec<u64>,
    mut mark: impl FnMut(usize),
) {
    let w = masks.words;
    rows.clear();
    rows.resize((a.len() + 1) * w, !0);
    let mut any = false;
    for (i, &x) in a.iter().enumerate() {
        let (before, after) = rows.split_at_mut((i + 1) * w);
        let next = &mut after[..w];
        next.copy_from_slice(&before[i * w..]);
        any |= advance(next, masks.of(x));
    }
    if !any {
        return;
    }
    let row = |i: usize| &rows[i * w..(i + 1) * w];
    let (mut i, mut j) = (a.len(), b.len());
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            mark(i - 1);
            i -= 1;
            j -= 1;
        } else if zeros_below(row(i), j) == 0 {
            // t[i][j] = 0: no element of a[..i] equals one of b[..j], nothing left to mark.
            return;
        } else if zeros_below(row(i), j - 1) > zeros_below(row(i - 1), j) {
            j -= 1;
        } else {
            i -= 1;
        }
    }
}

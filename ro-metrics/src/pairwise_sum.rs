//! NumPy's pairwise summation, reproduced exactly.
//!
//! scikit-learn and scipy sum float arrays with `numpy.sum`, which does not add left to right
//! but pairwise in blocks (numpy `_core/src/umath/loops_utils.h.src`, `pairwise_sum_DOUBLE`).
//! Reproducing the same grouping gives bit-identical sums, so our metrics equal theirs to the
//! last bit instead of to a few ulps.

/// Block size below which NumPy sums with eight interleaved accumulators.
const PW_BLOCKSIZE: usize = 128;

/// Sums `values` exactly as `numpy.sum` does for a contiguous `float64` array.
pub(crate) fn pairwise_sum(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 8 {
        let mut res = 0.0;
        for &v in values {
            res += v;
        }
        res
    } else if n <= PW_BLOCKSIZE {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&values[..8]);
        let end = n - n % 8;
        let mut i = 8;
        while i < end {
            for (j, acc) in r.iter_mut().enumerate() {
                *acc += values[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &values[end..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&values[..n2]) + pairwise_sum(&values[n2..])
    }
}

#[cfg(test)]
mod tests {
    use super::pairwise_sum;

    #[test]
    fn small_sums_are_sequential() {
        assert_eq!(pairwise_sum(&[]), 0.0);
        assert_eq!(pairwise_sum(&[1.0, 2.0, 3.5]), 6.5);
    }

    #[test]
    fn grouping_differs_from_left_to_right() {
        // 1e16 + 1 + 1 + ... loses every 1 left to right; NumPy's eight accumulators keep
        // the ones in separate lanes and add them up before meeting the big number.
        let mut v = vec![1.0; 16];
        v[0] = 1e16;
        let sequential: f64 = v.iter().fold(0.0, |a, b| a + b);
        assert_eq!(sequential, 1e16);
        assert_eq!(pairwise_sum(&v), 1e16 + 14.0); // numpy.sum gives the same
    }

    #[test]
    fn large_arrays_split_in_halves() {
        let v: Vec<f64> = (0..1000).map(|i| (i as f64) * 0.5).collect();
        assert_eq!(pairwise_sum(&v), 249_750.0);
    }
}

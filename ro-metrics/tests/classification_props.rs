//! Property tests of the classification metrics: ranges, symmetries, consistency.

use proptest::prelude::*;
use ro_metrics::{
    accuracy, confusion_matrix, precision_recall_fscore_support, Average, PrfOptions, PrfScores,
};

fn pairs() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (1usize..60).prop_flat_map(|n| {
        (
            prop::collection::vec(0u8..5, n),
            prop::collection::vec(0u8..6, n),
        )
    })
}

proptest! {
    #[test]
    fn scores_lie_in_unit_interval((t, p) in pairs(), avg in 0usize..4) {
        let average = [None, Some(Average::Micro), Some(Average::Macro), Some(Average::Weighted)][avg];
        let opts = PrfOptions { average, ..PrfOptions::default() };
        let r = precision_recall_fscore_support(&t, &p, &opts).unwrap();
        let all: Vec<f64> = match r.scores {
            PrfScores::PerLabel { precision, recall, fscore, .. } =>
                precision.into_iter().chain(recall).chain(fscore).collect(),
            PrfScores::Averaged { precision, recall, fscore } => vec![precision, recall, fscore],
        };
        for v in all {
            prop_assert!((0.0..=1.0).contains(&v), "{v}");
        }
        let acc = accuracy(&t, &p, None).unwrap();
        prop_assert!((0.0..=1.0).contains(&acc));
    }

    #[test]
    fn micro_over_all_labels_equals_accuracy((t, p) in pairs()) {
        let opts = PrfOptions { average: Some(Average::Micro), ..PrfOptions::default() };
        let r = precision_recall_fscore_support(&t, &p, &opts).unwrap();
        let PrfScores::Averaged { precision, recall, fscore } = r.scores else { unreachable!() };
        let acc = accuracy(&t, &p, None).unwrap();
        prop_assert!((precision - acc).abs() < 1e-12);
        prop_assert!((recall - acc).abs() < 1e-12);
        prop_assert!((fscore - acc).abs() < 1e-12);
    }

    #[test]
    fn swapping_truth_and_prediction_swaps_precision_and_recall((t, p) in pairs()) {
        let opts = PrfOptions::<u8> { labels: Some((0..6).collect()), ..PrfOptions::default() };
        let a = precision_recall_fscore_support(&t, &p, &opts).unwrap();
        let b = precision_recall_fscore_support(&p, &t, &opts).unwrap();
        let (PrfScores::PerLabel { precision: pa, recall: ra, fscore: fa, .. },
             PrfScores::PerLabel { precision: pb, recall: rb, fscore: fb, .. }) = (a.scores, b.scores)
        else { unreachable!() };
        prop_assert_eq!(pa, rb);
        prop_assert_eq!(ra, pb);
        prop_assert_eq!(fa, fb);
    }

    #[test]
    fn confusion_matrix_is_consistent_with_support((t, p) in pairs()) {
        let cm = confusion_matrix(&t, &p, None, None).unwrap();
        let r = precision_recall_fscore_support(&t, &p, &PrfOptions::default()).unwrap();
        let PrfScores::PerLabel { support, .. } = r.scores else { unreachable!() };
        prop_assert_eq!(&cm.labels, &r.labels);
        for (row, s) in cm.rows().iter().zip(support) {
            prop_assert_eq!(row.iter().sum::<f64>(), s);
        }
        prop_assert_eq!(cm.counts.iter().sum::<f64>(), t.len() as f64);
    }
}

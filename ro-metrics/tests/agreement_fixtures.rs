//! ro-metrics' agreement and proportion statistics, and the special functions under them,
//! against the reference libraries on `tools/fixtures/agreement/agreement.json` (written by
//! `generate.py` beside it: scikit-learn 1.9.1, statsmodels 0.15.0, krippendorff 0.9.0,
//! scipy 1.17.1).
//!
//! Every finite reference value is matched to 1e-12 relative; each test also asserts the worst
//! relative error it saw stays below the bound measured when the test was written, so a
//! regression in precision shows up even while it is still inside 1e-12.

use ro_metrics::{beta_cdf, beta_isf, beta_ppf, beta_sf, normal_ppf};
use serde_json::Value;

const FIXTURE: &str = include_str!("../../tools/fixtures/agreement/agreement.json");

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).expect("fixture is JSON")
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().expect("number"),
        Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            other => panic!("not a number: {other}"),
        },
        other => panic!("not a number: {other}"),
    }
}

/// Relative difference (0 when both are the same non-finite value or both are NaN).
fn relative_error(got: f64, want: f64) -> f64 {
    if got == want || (got.is_nan() && want.is_nan()) {
        0.0
    } else if want == 0.0 || !want.is_finite() || !got.is_finite() {
        f64::INFINITY
    } else {
        ((got - want) / want).abs()
    }
}

/// Where the reference library is itself off the exact value (50-digit mpmath, stored in the
/// fixture) by more than this, we are held to the exact value instead.
const REFERENCE_OFF: f64 = 1e-13;

/// Values below this are subnormal or zero in the reference (scipy flushes some to 0).
const SUBNORMAL: f64 = 1e-300;

/// Compares our values with the reference's and, where recorded, with the exact value; keeps
/// the worst relative errors and the cases where the reference is the one that is off.
struct Tally {
    what: &'static str,
    worst_reference: (f64, String),
    worst_exact: (f64, String),
    reference_off: Vec<String>,
}

impl Tally {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            worst_reference: (0.0, String::new()),
            worst_exact: (0.0, String::new()),
            reference_off: Vec::new(),
        }
    }

    fn check(&mut self, case: &str, got: f64, reference: f64, exact: Option<f64>) {
        let what = self.what;
        if reference.abs() < SUBNORMAL && reference != 0.0 || reference == 0.0 && got != 0.0 {
            assert!(
                got.abs() < SUBNORMAL,
                "{what}: {case}: got {got:e}, reference {reference:e}"
            );
            return;
        }
        if let Some(exact) = exact {
            let e = relative_error(got, exact);
            if e > self.worst_exact.0 {
                self.worst_exact = (e, case.to_string());
            }
            let off = relative_error(reference, exact);
            if off > REFERENCE_OFF {
                assert!(
                    e < off && e <= 1e-12,
                    "{what}: {case}: got {got:e}, exact {exact:e} (ours off by {e:e}, the reference by {off:e})"
                );
                self.reference_off
                    .push(format!("{case}: reference off by {off:.1e}, ours {e:.1e}"));
                return;
            }
        }
        let e = relative_error(got, reference);
        assert!(
            e <= 1e-12,
            "{what}: {case}: got {got:e}, reference {reference:e} (relative error {e:e})"
        );
        if e > self.worst_reference.0 {
            self.worst_reference = (e, case.to_string());
        }
    }

    /// Reports the tally (shown with `--nocapture`) and checks the worst errors against the
    /// bounds measured when the test was written.
    fn finish(self, reference_bound: f64, exact_bound: f64) {
        let Self {
            what,
            worst_reference,
            worst_exact,
            reference_off,
        } = self;
        eprintln!(
            "{what}: worst relative error against the reference {:.2e} ({}), against the exact value {:.2e} ({})",
            worst_reference.0, worst_reference.1, worst_exact.0, worst_exact.1
        );
        for line in &reference_off {
            eprintln!("{what}: {line}");
        }
        assert!(
            worst_reference.0 <= reference_bound,
            "{what}: worst relative error {:e} ({}) above the measured {reference_bound:e}",
            worst_reference.0,
            worst_reference.1
        );
        assert!(
            worst_exact.0 <= exact_bound,
            "{what}: worst error against the exact value {:e} ({}) above the measured {exact_bound:e}",
            worst_exact.0,
            worst_exact.1
        );
    }
}

fn exact(row: &Value, key: &str) -> Option<f64> {
    row.get("exact")
        .and_then(|e| e.get(key))
        .filter(|v| !v.is_null())
        .map(num)
}

#[test]
fn normal_quantile_is_scipy_ndtri_bit_for_bit() {
    let doc = fixture();
    let pairs = doc["special"]["ndtri"].as_array().expect("ndtri");
    assert!(pairs.len() > 150);
    for pair in pairs {
        let p = num(&pair[0]);
        let want = num(&pair[1]);
        let got = normal_ppf(p);
        assert!(
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
            "ndtri({p:e}) = {got:e}, scipy {want:e}"
        );
    }
}

#[test]
fn beta_distribution_matches_scipy() {
    let doc = fixture();
    let rows = doc["special"]["beta"].as_array().expect("beta");
    assert!(rows.len() > 1000);
    let mut quantiles = Tally::new("beta ppf/isf");
    let mut tails = Tally::new("beta cdf/sf");
    for row in rows {
        let (a, b) = (num(&row["a"]), num(&row["b"]));
        if let Some(p) = row.get("p") {
            let p = num(p);
            let case = format!("a={a} b={b} p={p:e}");
            for (kind, got) in [("ppf", beta_ppf(p, a, b)), ("isf", beta_isf(p, a, b))] {
                let name = format!("{kind} {case}");
                quantiles.check(&name, got, num(&row[kind]), exact(row, kind));
            }
        } else {
            let x = num(&row["x"]);
            let case = format!("a={a} b={b} x={x:e}");
            for (kind, got) in [("cdf", beta_cdf(x, a, b)), ("sf", beta_sf(x, a, b))] {
                let name = format!("{kind} {case}");
                tails.check(&name, got, num(&row[kind]), exact(row, kind));
            }
        }
    }
    quantiles.finish(1e-13, 1e-14);
    tails.finish(2e-13, 2e-13);
}

/// The cases of one statistic.
fn cases(statistic: &str) -> Vec<Value> {
    let doc = fixture();
    doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["statistic"] == statistic)
        .cloned()
        .collect()
}

/// What the reference did with a case, and what we must do.
enum Expected {
    /// It raised (or the case is outside the documented domain): we return an error.
    Error(String),
    /// It returned these numbers (NaN included: we return NaN there).
    Values(Value),
}

fn expected(case: &Value) -> Expected {
    let e = &case["expected"];
    let name = case["name"].as_str().expect("name");
    if let Some(msg) = e.get("error") {
        Expected::Error(msg.as_str().expect("message").to_string())
    } else if name.starts_with("invalid_") {
        Expected::Error(format!(
            "outside statsmodels' documented domain (it returned {e})"
        ))
    } else {
        Expected::Values(e.clone())
    }
}

/// Checks one computed result against the case's expectation.
fn check_value<E: std::fmt::Display>(
    tally: &mut Tally,
    case: &Value,
    got: Result<Vec<(&'static str, f64)>, E>,
) {
    let name = case["name"].as_str().expect("name");
    match (expected(case), got) {
        (Expected::Error(_), Err(_)) => {}
        (Expected::Error(msg), Ok(v)) => {
            panic!("{name}: the reference raised {msg}, we returned {v:?}")
        }
        (Expected::Values(_), Err(e)) => panic!("{name}: unexpected error: {e}"),
        (Expected::Values(want), Ok(values)) => {
            for (key, got) in values {
                let reference = num(&want[key]);
                if reference.is_nan() {
                    assert!(
                        got.is_nan(),
                        "{name}.{key}: the reference is NaN, we returned {got}"
                    );
                    continue;
                }
                tally.check(&format!("{name}.{key}"), got, reference, exact(case, key));
            }
        }
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(String::from))
        .collect()
}

fn integers(v: &Value) -> Option<Vec<i64>> {
    v.as_array()?.iter().map(Value::as_i64).collect()
}

fn cohen_case<L: Ord + Clone>(
    case: &Value,
    parse: impl Fn(&Value) -> Option<Vec<L>>,
) -> Result<f64, ro_metrics::MetricsError> {
    use ro_metrics::agreement::{cohen_kappa, CohenKappaOptions};
    let weights = match case["weights"].as_str() {
        None => None,
        Some(w) => Some(w.parse()?),
    };
    let options = CohenKappaOptions {
        labels: parse(&case["labels"]),
        weights,
        sample_weight: case
            .get("sample_weight")
            .and_then(Value::as_array)
            .map(|w| w.iter().map(num).collect()),
    };
    let y1 = parse(&case["y1"]).expect("y1");
    let y2 = parse(&case["y2"]).expect("y2");
    cohen_kappa(&y1, &y2, &options)
}

#[test]
fn cohen_kappa_matches_scikit_learn() {
    let cases = cases("cohen_kappa");
    assert!(cases.len() > 250);
    let mut tally = Tally::new("cohen_kappa");
    for case in &cases {
        let result = if strings(&case["y1"]).is_some_and(|v| !v.is_empty()) {
            cohen_case(case, strings)
        } else {
            cohen_case(case, integers)
        };
        check_value(&mut tally, case, result.map(|k| vec![("value", k)]));
    }
    tally.finish(0.0, 0.0);
}

#[test]
fn fleiss_kappa_matches_statsmodels() {
    use ro_metrics::agreement::fleiss_kappa;
    let cases = cases("fleiss_kappa");
    assert!(cases.len() > 200);
    let mut tally = Tally::new("fleiss_kappa");
    for case in &cases {
        let table: Vec<Vec<f64>> = case["table"]
            .as_array()
            .expect("table")
            .iter()
            .map(|row| row.as_array().expect("row").iter().map(num).collect())
            .collect();
        let result = case["method"]
            .as_str()
            .expect("method")
            .parse()
            .and_then(|method| fleiss_kappa(&table, method));
        check_value(&mut tally, case, result.map(|k| vec![("value", k)]));
    }
    tally.finish(0.0, 0.0);
}

fn ratings<V>(case: &Value, key: &str, parse: impl Fn(&Value) -> V) -> Option<Vec<Vec<Option<V>>>> {
    let rows = case.get(key)?.as_array()?;
    Some(
        rows.iter()
            .map(|row| {
                row.as_array()
                    .expect("row")
                    .iter()
                    .map(|v| (!v.is_null()).then(|| parse(v)))
                    .collect()
            })
            .collect(),
    )
}

#[test]
fn krippendorff_alpha_matches_the_krippendorff_package() {
    use ro_metrics::agreement::{krippendorff_alpha, LevelOfMeasurement};
    let cases = cases("krippendorff_alpha");
    assert!(cases.len() > 250);
    let mut tally = Tally::new("krippendorff_alpha");
    for case in &cases {
        let level = case["level_of_measurement"]
            .as_str()
            .expect("level")
            .parse::<LevelOfMeasurement>();
        let labels = case["reliability_data"]
            .as_array()
            .expect("data")
            .iter()
            .flat_map(|r| r.as_array().expect("row"))
            .any(Value::is_string);
        let result = level.and_then(|level| {
            if labels {
                let data = ratings(case, "reliability_data", |v| {
                    v.as_str().expect("label").to_string()
                })
                .expect("data");
                let domain = strings(case.get("value_domain").unwrap_or(&Value::Null));
                krippendorff_alpha(&data, level, domain.as_deref())
            } else {
                let data = ratings(case, "reliability_data", num).expect("data");
                let domain: Option<Vec<f64>> = case
                    .get("value_domain")
                    .and_then(Value::as_array)
                    .map(|d| d.iter().map(num).collect());
                krippendorff_alpha(&data, level, domain.as_deref())
            }
        });
        check_value(&mut tally, case, result.map(|a| vec![("value", a)]));
    }
    tally.finish(0.0, 0.0);
}

#[test]
fn proportion_confint_matches_statsmodels() {
    use ro_metrics::proportion_confint;
    let cases = cases("proportion_ci");
    assert!(cases.len() > 400);
    // The normal-quantile methods are statsmodels' arithmetic on scipy's ndtri, bit for bit;
    // the beta-quantile methods are within a few ulps of the exact quantile.
    let mut closed_form = Tally::new("proportion_confint normal/agresti_coull/wilson");
    let mut quantiles = Tally::new("proportion_confint beta/jeffreys");
    for case in &cases {
        let method = case["method"].as_str().expect("method");
        let tally = if matches!(method, "beta" | "jeffreys") {
            &mut quantiles
        } else {
            &mut closed_form
        };
        let result = method.parse().and_then(|method| {
            proportion_confint(
                num(&case["count"]),
                num(&case["nobs"]),
                num(&case["alpha"]),
                method,
            )
        });
        check_value(
            tally,
            case,
            result.map(|ci| vec![("low", ci.low), ("high", ci.high)]),
        );
    }
    closed_form.finish(0.0, 0.0);
    quantiles.finish(1e-13, 1e-14);
}

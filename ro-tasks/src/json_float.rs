//! Floats in JSON the way every program of this workspace writes them: a number when finite,
//! else the strings `"NaN"`, `"Infinity"` or `"-Infinity"` (plain serde_json writes `null`
//! and loses the value). Reading accepts both forms, plus `"inf"` and `"-inf"`.
//!
//! Use it on a field with `#[serde(with = "crate::json_float")]`; it covers `f64`,
//! `Option<f64>`, `Vec<f64>` and `Vec<Vec<f64>>` through [`JsonFloat`].
//!
//! ```
//! use ro_tasks::MetricCases;
//! let m = MetricCases { name: "rouge1".into(), values: vec![0.5, f64::NAN], mean: f64::NAN };
//! let text = serde_json::to_string(&m).unwrap();
//! assert_eq!(text, r#"{"name":"rouge1","values":[0.5,"NaN"],"mean":"NaN"}"#);
//! let back: MetricCases = serde_json::from_str(&text).unwrap();
//! assert!(back.mean.is_nan() && back.values[0] == 0.5);
//! ```

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// One float as it travels through serde: a number, or a string naming a non-finite value.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Number(f64),
    Text(String),
}

impl Repr {
    fn of(v: f64) -> Self {
        if v.is_finite() {
            Repr::Number(v)
        } else if v.is_nan() {
            Repr::Text("NaN".into())
        } else if v > 0.0 {
            Repr::Text("Infinity".into())
        } else {
            Repr::Text("-Infinity".into())
        }
    }

    fn value<E: de::Error>(self) -> Result<f64, E> {
        match self {
            Repr::Number(v) => Ok(v),
            Repr::Text(s) => match s.as_str() {
                "NaN" | "nan" => Ok(f64::NAN),
                "Infinity" | "inf" => Ok(f64::INFINITY),
                "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
                other => Err(E::custom(format!(
                    "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\", found {other:?}"
                ))),
            },
        }
    }
}

/// A shape of floats that [`serialize`] and [`deserialize`] handle.
pub trait JsonFloat: Sized {
    /// Writes `self` with non-finite values as strings.
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
    /// Reads a value written by [`JsonFloat::write`] (or plain numbers).
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

impl JsonFloat for f64 {
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Repr::of(*self).serialize(s)
    }
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Repr::deserialize(d)?.value()
    }
}

impl JsonFloat for Option<f64> {
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.map(Repr::of).serialize(s)
    }
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<Repr>::deserialize(d)?.map(Repr::value).transpose()
    }
}

impl JsonFloat for Vec<f64> {
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(|v| Repr::of(*v)))
    }
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Repr>::deserialize(d)?
            .into_iter()
            .map(Repr::value)
            .collect()
    }
}

impl JsonFloat for Vec<Vec<f64>> {
    fn write<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.iter()
                .map(|row| row.iter().map(|v| Repr::of(*v)).collect::<Vec<_>>()),
        )
    }
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Vec<Repr>>::deserialize(d)?
            .into_iter()
            .map(|row| row.into_iter().map(Repr::value).collect())
            .collect()
    }
}

/// `serialize_with` entry point for `#[serde(with = "...")]`.
///
/// # Errors
/// Whatever the serializer reports.
pub fn serialize<T: JsonFloat, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    v.write(s)
}

/// `deserialize_with` entry point for `#[serde(with = "...")]`.
///
/// # Errors
/// A string other than the non-finite names, or a value of the wrong shape.
pub fn deserialize<'de, T: JsonFloat, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    T::read(d)
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct All {
        #[serde(with = "super")]
        a: f64,
        #[serde(with = "super")]
        b: Option<f64>,
        #[serde(with = "super")]
        c: Vec<f64>,
        #[serde(with = "super")]
        d: Vec<Vec<f64>>,
    }

    #[test]
    fn round_trips_every_shape_and_value() {
        let v = All {
            a: f64::INFINITY,
            b: Some(f64::NEG_INFINITY),
            c: vec![1.5, f64::NAN, -0.0],
            d: vec![vec![f64::INFINITY], vec![]],
        };
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(
            text,
            r#"{"a":"Infinity","b":"-Infinity","c":[1.5,"NaN",-0.0],"d":[["Infinity"],[]]}"#
        );
        let back: All = serde_json::from_str(&text).unwrap();
        assert_eq!(back.a, f64::INFINITY);
        assert_eq!(back.b, Some(f64::NEG_INFINITY));
        assert!(back.c[1].is_nan() && back.c[2].to_bits() == (-0.0f64).to_bits());
        let none: All = serde_json::from_str(r#"{"a":1,"b":null,"c":[],"d":[]}"#).unwrap();
        assert_eq!(none.b, None);
    }

    #[test]
    fn rejects_other_strings() {
        let e = serde_json::from_str::<All>(r#"{"a":"big","b":null,"c":[],"d":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"big\""), "{e}");
    }
}

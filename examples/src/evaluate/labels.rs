//! Class labels in JSON lines: all strings or all integers, as scikit-learn requires.
//!
//! Used by `evaluate classify` (`y_true`, `y_pred`, `labels`) and `evaluate agreement`
//! (`y1`, `y2`, `labels`). An integer may be written as a whole float (`2.0`); an empty array
//! has no type of its own and takes the others'.

use serde_json::Value;

use super::json::{kind, optional, required, Fields};

/// The labels of one JSON array.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// All strings (an empty array parses as this).
    Str(Vec<String>),
    /// All integers.
    Int(Vec<i64>),
}

/// Parses an array of labels named `field`.
///
/// # Errors
/// Not an array, or a mix of strings and numbers, or a number that is not an integer.
pub fn parse_labels(v: &Value, field: &str) -> Result<Labels, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("`{field}`: expected an array of labels, got {}", kind(v)))?;
    if items.iter().all(Value::is_string) {
        return Ok(Labels::Str(
            items
                .iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect(),
        ));
    }
    let ints: Option<Vec<i64>> = items
        .iter()
        .map(|x| match x {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }),
            _ => None,
        })
        .collect();
    ints.map(Labels::Int).ok_or_else(|| {
        format!("`{field}`: labels must be all strings or all integers (scikit-learn refuses mixed or continuous labels)")
    })
}

/// Several label arrays of one line, converted to one label type.
#[derive(Debug, Clone, PartialEq)]
pub enum SameKind {
    /// String labels, one vector per input array, in order.
    Str(Vec<Vec<String>>),
    /// Integer labels, one vector per input array, in order.
    Int(Vec<Vec<i64>>),
}

/// Puts `arrays` (named `names`, same order) under one label type; empty arrays take the type
/// of the others (integers when all are empty).
///
/// # Errors
/// One array holds strings and another integers.
pub fn same_kind(arrays: Vec<Labels>, names: &[&str]) -> Result<SameKind, String> {
    let non_empty_str = arrays
        .iter()
        .position(|a| matches!(a, Labels::Str(v) if !v.is_empty()));
    let non_empty_int = arrays
        .iter()
        .position(|a| matches!(a, Labels::Int(v) if !v.is_empty()));
    if let (Some(s), Some(i)) = (non_empty_str, non_empty_int) {
        return Err(format!(
            "`{}` holds strings but `{}` holds integers: labels must be all strings or all integers",
            names.get(s).unwrap_or(&"?"),
            names.get(i).unwrap_or(&"?"),
        ));
    }
    Ok(if non_empty_str.is_some() {
        SameKind::Str(
            arrays
                .into_iter()
                .map(|a| match a {
                    Labels::Str(v) => v,
                    Labels::Int(_) => Vec::new(),
                })
                .collect(),
        )
    } else {
        SameKind::Int(
            arrays
                .into_iter()
                .map(|a| match a {
                    Labels::Int(v) => v,
                    Labels::Str(_) => Vec::new(),
                })
                .collect(),
        )
    })
}

/// Reads a line's two label arrays `first` and `second` and its optional `labels` list under
/// one label type (split them with [`pair_and_labels`]).
///
/// # Errors
/// A missing array, an array that is not labels, or strings mixed with integers.
pub fn read_pair(line: &Fields, first: &str, second: &str) -> Result<SameKind, String> {
    let mut arrays = vec![
        parse_labels(required(line, first)?, first)?,
        parse_labels(required(line, second)?, second)?,
    ];
    if let Some(v) = optional(line, "labels") {
        arrays.push(parse_labels(v, "labels")?);
    }
    same_kind(arrays, &[first, second, "labels"])
}

/// Splits the arrays of [`read_pair`] (`[first, second]` or `[first, second, labels]`).
pub fn pair_and_labels<L>(arrays: Vec<Vec<L>>) -> (Vec<L>, Vec<L>, Option<Vec<L>>) {
    let mut arrays = arrays.into_iter();
    let first = arrays.next().unwrap_or_default();
    let second = arrays.next().unwrap_or_default();
    (first, second, arrays.next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_unifies() {
        assert_eq!(
            parse_labels(&json!([1, 2.0]), "y").unwrap(),
            Labels::Int(vec![1, 2])
        );
        assert!(parse_labels(&json!([1, "a"]), "y").is_err());
        assert!(parse_labels(&json!([1.5]), "y").is_err());
        let empty = parse_labels(&json!([]), "labels").unwrap();
        let ints = parse_labels(&json!([3]), "y").unwrap();
        assert_eq!(
            same_kind(vec![ints.clone(), empty], &["y", "labels"]).unwrap(),
            SameKind::Int(vec![vec![3], vec![]])
        );
        let strs = parse_labels(&json!(["a"]), "y2").unwrap();
        let e = same_kind(vec![ints, strs], &["y1", "y2"]).unwrap_err();
        assert!(
            e.contains("`y2` holds strings but `y1` holds integers"),
            "{e}"
        );
    }
}

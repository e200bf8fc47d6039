//! Multi-dimensional arrays, the same for every driver: a [`Value::Array`] whose items are arrays
//! of one length (`Vec<Vec<i64>>` binds as `bigint[][]`) flattened into the dimensions and
//! elements PostgreSQL's array format carries, and read back nested.
//!
//! PostgreSQL arrays are rectangular: every sub-array of a dimension has the same length, and
//! an array with a dimension of length 0 is the empty array (`{}`). Lower bounds other than 1
//! (`'[0:1]={1,2}'`) are not kept when read, as a `Vec` has none.

use crate::{Kind, Value};

/// An array value laid out as the wire format has it: one length per dimension (none for the
/// empty array) and the elements, last dimension fastest.
#[derive(Debug, Clone, PartialEq)]
pub struct Flat<'v> {
    /// The length of each dimension, outermost first; empty for an empty array.
    pub dimensions: Vec<i32>,
    /// The elements (never arrays), in order.
    pub elements: Vec<&'v Value>,
}

/// Lays out the `items` of a [`Value::Array`]: a one-dimensional array's items as they are, an
/// array of arrays as its dimensions and elements. The message of an error says what is wrong
/// with the shape, never a value.
///
/// # Errors
///
/// The sub-arrays differ in length or depth, or items mix arrays and other values.
pub fn flatten(items: &[Value]) -> Result<Flat<'_>, String> {
    // The shape is the first path down; every other branch must match it.
    let mut dimensions = Vec::new();
    let mut level = items;
    loop {
        dimensions.push(i32::try_from(level.len()).map_err(|_| "array too long".to_owned())?);
        match level.first() {
            Some(Value::Array { items, .. }) => level = items,
            _ => break,
        }
    }
    let mut elements = Vec::new();
    collect(items, &dimensions, &mut elements)?;
    if dimensions.contains(&0) {
        dimensions.clear();
        elements.clear();
    }
    Ok(Flat {
        dimensions,
        elements,
    })
}

const RAGGED: &str = "a multi-dimensional array needs sub-arrays of one length and depth \
                      (PostgreSQL arrays are rectangular)";

/// Checks `items` against `shape` (their own length first) and collects the elements.
fn collect<'v>(
    items: &'v [Value],
    shape: &[i32],
    elements: &mut Vec<&'v Value>,
) -> Result<(), String> {
    let Some((&len, inner)) = shape.split_first() else {
        return Err(RAGGED.to_owned());
    };
    if usize::try_from(len).ok() != Some(items.len()) {
        return Err(RAGGED.to_owned());
    }
    for item in items {
        match item {
            Value::Array { items, .. } if !inner.is_empty() => collect(items, inner, elements)?,
            Value::Array { .. } => return Err(RAGGED.to_owned()),
            _ if !inner.is_empty() => return Err(RAGGED.to_owned()),
            scalar => elements.push(scalar),
        }
    }
    Ok(())
}

/// The [`Value::Array`] of `elements` in `dimensions` (as read from the wire): nested arrays of
/// arrays for more than one dimension, whose innermost arrays have `element` items.
///
/// # Errors
///
/// The number of elements is not the product of the dimensions.
pub fn nest(dimensions: &[i32], elements: Vec<Value>, element: Kind) -> Result<Value, String> {
    let sizes: Vec<usize> = dimensions
        .iter()
        .map(|d| usize::try_from(*d).map_err(|_| "negative array dimension".to_owned()))
        .collect::<Result<_, _>>()?;
    let total = sizes.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d));
    if dimensions.is_empty() || total != Some(elements.len()) {
        return if dimensions.is_empty() && elements.is_empty() {
            Ok(Value::Array {
                element,
                items: Vec::new(),
            })
        } else {
            Err("array dimensions do not match its elements".to_owned())
        };
    }
    Ok(build(&sizes, &mut elements.into_iter(), element))
}

fn build(sizes: &[usize], elements: &mut impl Iterator<Item = Value>, element: Kind) -> Value {
    match sizes {
        [] | [_] => Value::Array {
            element,
            items: elements.take(sizes.first().copied().unwrap_or(0)).collect(),
        },
        [len, inner @ ..] => Value::Array {
            element: Kind::Array,
            items: (0..*len).map(|_| build(inner, elements, element)).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[i32]) -> Value {
        Value::Array {
            element: Kind::Int4,
            items: v.iter().copied().map(Value::Int4).collect(),
        }
    }

    fn outer(items: Vec<Value>) -> Value {
        Value::Array {
            element: Kind::Array,
            items,
        }
    }

    #[test]
    fn rectangles_flatten_and_nest_back() {
        let grid = outer(vec![ints(&[1, 2, 3]), ints(&[4, 5, 6])]);
        let Value::Array { items, .. } = &grid else {
            unreachable!()
        };
        let flat = flatten(items).unwrap();
        assert_eq!(flat.dimensions, [2, 3]);
        assert_eq!(flat.elements.len(), 6);
        let back = nest(
            &flat.dimensions,
            flat.elements.into_iter().cloned().collect(),
            Kind::Int4,
        )
        .unwrap();
        assert_eq!(back, grid);
        let one = flatten(&[Value::Int4(1), Value::Null]).unwrap();
        assert_eq!(one.dimensions, [2]);
        assert_eq!(flatten(&[]).unwrap().dimensions, Vec::<i32>::new());
        assert_eq!(
            flatten(&[ints(&[]), ints(&[])]).unwrap().dimensions,
            Vec::<i32>::new()
        );
    }

    #[test]
    fn ragged_and_mixed_arrays_are_refused() {
        for items in [
            vec![ints(&[1, 2]), ints(&[3])],
            vec![ints(&[1]), Value::Int4(2)],
            vec![Value::Int4(2), ints(&[1])],
            vec![outer(vec![ints(&[1])]), ints(&[1])],
            vec![ints(&[1]), outer(vec![ints(&[1])])],
        ] {
            let err = flatten(&items).unwrap_err();
            assert!(err.contains("rectangular"), "{err}");
        }
        assert!(nest(&[2, 2], vec![Value::Int4(1)], Kind::Int4).is_err());
    }
}

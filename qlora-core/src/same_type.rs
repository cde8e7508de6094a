//! Moving a value between two generic types that are the same concrete type, for the few
//! places that specialise on a backend (`quant::autodiff`, `lora::frozen_linear`): burn has no
//! per-operation extension point short of a new bound on every generic model.

use std::any::Any;

/// Moves the value out of `slot` as a `U` when `T` is `U`; leaves `slot` as it is otherwise.
pub(crate) fn take_as<T: 'static, U: 'static>(slot: &mut Option<T>) -> Option<U> {
    (slot as &mut dyn Any)
        .downcast_mut::<Option<U>>()
        .and_then(Option::take)
}

/// A reference to `value` as a `U` when `T` is `U`.
pub(crate) fn as_ref<T: 'static, U: 'static>(value: &T) -> Option<&U> {
    (value as &dyn Any).downcast_ref::<U>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_only_between_equal_types() {
        let mut slot = Some(5u32);
        assert_eq!(take_as::<u32, u64>(&mut slot), None);
        assert_eq!(slot, Some(5));
        assert_eq!(take_as::<u32, u32>(&mut slot), Some(5));
        assert_eq!(slot, None);
        assert_eq!(as_ref::<u8, u8>(&3), Some(&3));
        assert_eq!(as_ref::<u8, i8>(&3), None);
    }
}

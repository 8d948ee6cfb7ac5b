//! Reading a condition's `params` object field by field, with messages that name the
//! field and say what is expected. Fields nobody read are reported as unknown, so a
//! typo (`perod`) is an error, not a silent default.

use serde_json::{Map, Value};

use crate::validation::ValidationError;

/// The params object being read.
pub(crate) struct Params<'a> {
    map: &'a Map<String, Value>,
    read: Vec<&'a str>,
    prefix: &'static str,
}

impl<'a> Params<'a> {
    /// `prefix` is prepended to field paths (`compare_to.` for a nested object).
    pub(crate) fn new(map: &'a Map<String, Value>, prefix: &'static str) -> Self {
        Self {
            map,
            read: Vec::new(),
            prefix,
        }
    }

    fn error(&self, field: &str, message: impl Into<String>) -> ValidationError {
        ValidationError::new(format!("{}{field}", self.prefix), message)
    }

    fn get(&mut self, field: &'a str) -> Option<&'a Value> {
        let (key, value) = self.map.get_key_value(field)?;
        self.read.push(key.as_str());
        Some(value)
    }

    pub(crate) fn raw(&mut self, field: &'a str) -> Option<&'a Value> {
        self.get(field)
    }

    pub(crate) fn optional_str(
        &mut self,
        field: &'a str,
    ) -> Result<Option<&'a str>, ValidationError> {
        match self.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(self.error(field, "must be a string")),
        }
    }

    pub(crate) fn required_str(&mut self, field: &'a str) -> Result<&'a str, ValidationError> {
        self.optional_str(field)?
            .ok_or_else(|| self.error(field, "is required"))
    }

    pub(crate) fn optional_number(
        &mut self,
        field: &'a str,
    ) -> Result<Option<f64>, ValidationError> {
        match self.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => number(value)
                .map(Some)
                .map_err(|message| self.error(field, message)),
        }
    }

    /// A whole number in `min..=max`, or `default` when absent.
    pub(crate) fn integer(
        &mut self,
        field: &'a str,
        min: u16,
        max: u16,
        default: Option<u16>,
    ) -> Result<u16, ValidationError> {
        let value = match self.get(field) {
            None | Some(Value::Null) => {
                return default.ok_or_else(|| self.error(field, "is required"));
            }
            Some(value) => value,
        };
        let range = || format!("must be between {min} and {max}");
        let Some(number) = value.as_f64() else {
            return Err(self.error(field, format!("must be a whole number ({})", range())));
        };
        if number.fract() != 0.0 {
            return Err(self.error(field, format!("must be a whole number ({})", range())));
        }
        if number < f64::from(min) || number > f64::from(max) {
            return Err(self.error(field, range()));
        }
        Ok(number as u16)
    }

    /// Fails on any field that was not read.
    pub(crate) fn finish(self, known: &str) -> Result<(), ValidationError> {
        let mut unknown: Vec<&str> = self
            .map
            .keys()
            .map(String::as_str)
            .filter(|k| !self.read.contains(k))
            .collect();
        unknown.sort_unstable();
        match unknown.first() {
            None => Ok(()),
            Some(field) => Err(self.error(
                field,
                format!("unknown field; this condition takes {known}"),
            )),
        }
    }
}

/// A finite JSON number.
pub(crate) fn number(value: &Value) -> Result<f64, &'static str> {
    match value.as_f64() {
        Some(n) if n.is_finite() => Ok(n),
        Some(_) => Err("must be a finite number"),
        None => Err("must be a number"),
    }
}

//! Typed custom-resource properties from what CloudFormation actually sends.
//!
//! CloudFormation passes every scalar as a string: `"5"`, `"true"`. Lists arrive as lists of strings,
//! and a template author may also pass a comma-delimited string (`Fn::Join`, a `CommaDelimitedList`
//! parameter's `Ref`). The deserializers here accept both the string and the native JSON form, so the
//! same properties work from a template, from `cargo lambda invoke` and from tests.
//!
//! [`parse`] turns a serde failure into a [`PropertyError`] that names the property (with its path,
//! e.g. `Ports[1]`) and what was expected.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// Keys CloudFormation puts into `ResourceProperties` itself; they are not the resource's properties.
pub const RESERVED_KEYS: [&str; 2] = ["ServiceToken", "ServiceTimeout"];

/// A property that did not parse: which one, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct PropertyError {
    /// The property's path (`Ports[1]`), empty when the error concerns the properties as a whole.
    pub path: String,
    pub message: String,
}

impl PropertyError {
    fn render(&self) -> String {
        if self.path.is_empty() || self.path == "." {
            format!("invalid properties: {}", self.message)
        } else {
            format!("invalid property {}: {}", self.path, self.message)
        }
    }
}

/// Deserializes `properties` (the reserved keys removed) into `P`, naming the failing property.
pub fn parse<P: DeserializeOwned>(properties: &Value) -> Result<P, PropertyError> {
    let value = match properties {
        Value::Object(map) => {
            let mut map = map.clone();
            for key in RESERVED_KEYS {
                map.remove(key);
            }
            Value::Object(map)
        }
        Value::Null => Value::Object(Default::default()),
        other => {
            return Err(PropertyError {
                path: String::new(),
                message: format!("expected an object of properties, got {}", kind(other)),
            })
        }
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // serde reports a missing field at the parent; name the field itself.
        let path = match missing_field(&message) {
            Some(field) if path == "." => field.to_owned(),
            Some(field) => format!("{path}.{field}"),
            None => path,
        };
        PropertyError { path, message: clarify(&message) }
    })
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

fn clarify(message: &str) -> String {
    if missing_field(message).is_some() {
        "is required but missing".to_owned()
    } else {
        message.to_owned()
    }
}

/// How a JSON value is named in an error message ("a list", "an object" …).
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Whether `id` is an EC2-style resource id: `prefix` (e.g. `sg-`) and 8 or 17 lowercase hexadecimal
/// digits. Each caller words its own error, naming its property.
pub fn is_ec2_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|hex| matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// `#[serde(deserialize_with = "stackhand::props::number")]`: a number from `5` or `"5"`.
pub fn number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + TryFrom<u64> + TryFrom<i64>,
    <T as FromStr>::Err: fmt::Display,
{
    Scalar::<T>::deserialize(deserializer).map(|s| s.0)
}

/// Like [`number`], for an optional property.
pub fn optional_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + TryFrom<u64> + TryFrom<i64>,
    <T as FromStr>::Err: fmt::Display,
{
    Option::<Scalar<T>>::deserialize(deserializer).map(|o| o.map(|s| s.0))
}

/// A number parsed from a JSON number or a string holding one.
struct Scalar<T>(T);

impl<'de, T> Deserialize<'de> for Scalar<T>
where
    T: FromStr + TryFrom<u64> + TryFrom<i64>,
    <T as FromStr>::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T> Visitor<'_> for V<T>
        where
            T: FromStr + TryFrom<u64> + TryFrom<i64>,
            <T as FromStr>::Err: fmt::Display,
        {
            type Value = Scalar<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number (as a number or a string such as \"5\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                T::try_from(v).map(Scalar).map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                T::try_from(v).map(Scalar).map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.trim().parse().map(Scalar).map_err(|e| E::custom(format!("expected a whole number, got {v:?} ({e})")))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// `#[serde(deserialize_with = "stackhand::props::flag")]`: a boolean from `true` or
/// `"true"`/`"false"` (any case).
pub fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(E::custom(format!("expected \"true\" or \"false\", got {v:?}"))),
            }
        }
    }
    deserializer.deserialize_any(V)
}

/// `#[serde(deserialize_with = "stackhand::props::list")]`: a list of `T` parsed with `FromStr`, from
/// a JSON list of strings or numbers, or from one comma-delimited string. Empty entries are an error.
pub fn list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    <T as FromStr>::Err: fmt::Display,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T> Visitor<'de> for V<T>
    where
        T: FromStr,
        <T as FromStr>::Err: fmt::Display,
    {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list, or a comma-delimited string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.split(',').enumerate().map(|(i, item)| parse_item(i, item)).collect()
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<Value>()? {
                let text = match &item {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => {
                        return Err(de::Error::custom(format!(
                            "item {} is {}; expected a string or a number",
                            out.len(),
                            kind(other)
                        )))
                    }
                };
                out.push(parse_item(out.len(), &text)?);
            }
            Ok(out)
        }
    }
    fn parse_item<T, E>(index: usize, text: &str) -> Result<T, E>
    where
        T: FromStr,
        <T as FromStr>::Err: fmt::Display,
        E: de::Error,
    {
        let text = text.trim();
        if text.is_empty() {
            return Err(E::custom(format!("item {index} is empty")));
        }
        text.parse().map_err(|e| E::custom(format!("item {index} is {text:?}: {e}")))
    }
    deserializer.deserialize_any(V(PhantomData))
}

/// `#[serde(deserialize_with = "stackhand::props::parsed")]`: one value parsed with `FromStr` from a
/// string, with the parser's message on failure.
pub fn parsed<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    <T as FromStr>::Err: fmt::Display,
{
    let text = String::deserialize(deserializer)?;
    text.trim().parse().map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "PascalCase")]
    struct Props {
        name: String,
        #[serde(deserialize_with = "number")]
        count: u16,
        #[serde(default, deserialize_with = "optional_number")]
        limit: Option<u32>,
        #[serde(default, deserialize_with = "flag")]
        enabled: bool,
        #[serde(default, deserialize_with = "list")]
        ports: Vec<u16>,
    }

    #[test]
    fn strings_and_native_values_parse_alike() {
        let from_strings: Props = parse(&json!({
            "ServiceToken": "arn:aws:lambda:...", "Name": "x", "Count": "5", "Limit": "7",
            "Enabled": "TRUE", "Ports": ["80", "443"]
        }))
        .unwrap();
        let native: Props = parse(&json!({
            "Name": "x", "Count": 5, "Limit": 7, "Enabled": true, "Ports": [80, 443]
        }))
        .unwrap();
        assert_eq!(from_strings, native);
        assert_eq!(native.ports, vec![80, 443]);
    }

    #[test]
    fn a_comma_delimited_string_is_a_list() {
        let p: Props = parse(&json!({"Name": "x", "Count": "1", "Ports": "80, 443"})).unwrap();
        assert_eq!(p.ports, vec![80, 443]);
    }

    #[test]
    fn a_missing_property_is_named() {
        let e = parse::<Props>(&json!({"Count": "1"})).unwrap_err();
        assert_eq!(e.path, "Name");
        assert_eq!(e.to_string(), "invalid property Name: is required but missing");
    }

    #[test]
    fn a_bad_number_names_the_property_and_the_value() {
        let e = parse::<Props>(&json!({"Name": "x", "Count": "five"})).unwrap_err();
        assert_eq!(e.path, "Count");
        assert!(e.message.contains("\"five\""), "{e}");
        let e = parse::<Props>(&json!({"Name": "x", "Count": "70000"})).unwrap_err();
        assert_eq!(e.path, "Count");
    }

    #[test]
    fn a_bad_list_item_names_its_index() {
        let e = parse::<Props>(&json!({"Name": "x", "Count": 1, "Ports": ["80", "http"]})).unwrap_err();
        assert_eq!(e.path, "Ports");
        assert!(e.message.contains("item 1"), "{e}");
        let e = parse::<Props>(&json!({"Name": "x", "Count": 1, "Ports": ["80", {"a": 1}]})).unwrap_err();
        assert!(e.message.contains("an object"), "{e}");
        let e = parse::<Props>(&json!({"Name": "x", "Count": 1, "Ports": "80,,443"})).unwrap_err();
        assert!(e.message.contains("item 1 is empty"), "{e}");
    }

    #[test]
    fn a_bad_flag_says_what_is_accepted() {
        let e = parse::<Props>(&json!({"Name": "x", "Count": 1, "Enabled": "yes"})).unwrap_err();
        assert_eq!(e.path, "Enabled");
        assert!(e.message.contains("\"true\" or \"false\""), "{e}");
    }

    #[test]
    fn an_unknown_property_is_named_with_the_known_ones() {
        let e = parse::<Props>(&json!({"Name": "x", "Count": 1, "Prots": "80"})).unwrap_err();
        assert!(e.message.contains("unknown field `Prots`"), "{e}");
        assert!(e.message.contains("Ports"), "{e}");
    }

    #[test]
    fn ec2_ids_have_their_prefix_and_8_or_17_lowercase_hex_digits() {
        assert!(is_ec2_id("sg-01234567", "sg-") && is_ec2_id("eni-0123456789abcdef0", "eni-"));
        assert!(!is_ec2_id("sg-0123456", "sg-") && !is_ec2_id("sg-0123456A", "sg-") && !is_ec2_id("i-01234567", "sg-"));
    }

    #[test]
    fn properties_of_the_wrong_shape_are_refused() {
        let e = parse::<Props>(&json!(["Name"])).unwrap_err();
        assert_eq!(e.to_string(), "invalid properties: expected an object of properties, got a list");
        let e = parse::<Props>(&json!({"Name": {"x": 1}, "Count": 1})).unwrap_err();
        assert_eq!(e.path, "Name");
    }
}

//! Reads a SAM / CloudFormation template and evaluates its intrinsic functions.
//!
//! YAML short forms (`!Ref X`, `!GetAtt X.Arn`, `!Sub "..."`) are turned into their long forms
//! (`{"Ref": "X"}`, ...) first, so the rest works on plain JSON values.
//!
//! Supported: `Ref` (a `CommaDelimitedList` parameter gives a list), `Fn::GetAtt`, `Fn::Sub`,
//! `Fn::Join`, `Fn::Split`, `Fn::Select`, `Fn::If` (only the branch taken is evaluated), the
//! condition functions `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or` and `Condition`, and
//! `AWS::NoValue` (the key or list item is left out). A resource whose `Condition` is false is
//! not part of the stack ([`Template::active`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

/// A parsed template, intrinsics not yet evaluated.
#[derive(Debug, Clone)]
pub struct Template {
    pub parameters: BTreeMap<String, Value>,
    /// The `Conditions` section, unevaluated.
    pub conditions: BTreeMap<String, Value>,
    pub globals: Value,
    pub resources: BTreeMap<String, Resource>,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: String,
    pub properties: Value,
    pub metadata: Value,
    /// The resource's `Condition`: it exists only when that condition is true.
    pub condition: Option<String>,
}

impl Template {
    pub fn load(path: &Path) -> anyhow::Result<Template> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Template::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Template> {
        let yaml: Yaml = serde_yaml_ng::from_str(text)?;
        let root = to_json(yaml)?;
        let section = |name: &str| root.get(name).cloned().unwrap_or(Value::Object(Map::new()));
        let mut resources = BTreeMap::new();
        for (id, r) in section("Resources").as_object().cloned().unwrap_or_default() {
            let kind = r
                .get("Type")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("resource {id} has no Type"))?;
            resources.insert(
                id,
                Resource {
                    kind: kind.to_string(),
                    properties: r.get("Properties").cloned().unwrap_or(Value::Object(Map::new())),
                    metadata: r.get("Metadata").cloned().unwrap_or(Value::Null),
                    condition: r.get("Condition").and_then(Value::as_str).map(str::to_owned),
                },
            );
        }
        let parameters = section("Parameters")
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let conditions = section("Conditions")
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(Template {
            parameters,
            conditions,
            globals: section("Globals"),
            resources,
        })
    }

    /// Default values of the parameters, as strings (what `!Ref Param` yields).
    pub fn parameter_defaults(&self) -> HashMap<String, String> {
        self.parameters
            .iter()
            .filter_map(|(k, v)| v.get("Default").map(|d| (k.clone(), scalar_string(d))))
            .collect()
    }

    /// What `!Ref Param` yields for every parameter: its default, or the override given (as
    /// `sam deploy --parameter-overrides` gives them). A `CommaDelimitedList` is a list. An
    /// override of an unknown parameter, a value outside `AllowedValues` or a parameter with
    /// neither is an error, as CloudFormation refuses them.
    pub fn parameter_values(&self, overrides: &HashMap<String, String>) -> anyhow::Result<HashMap<String, Value>> {
        if let Some(unknown) = overrides.keys().find(|k| !self.parameters.contains_key(*k)) {
            bail!("parameter override {unknown}: the template has no such parameter");
        }
        let mut out = HashMap::new();
        for (name, spec) in &self.parameters {
            let text = match (overrides.get(name), spec.get("Default")) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => scalar_string(d),
                (None, None) => bail!("parameter {name} has no default and no value was given"),
            };
            if let Some(allowed) = spec.get("AllowedValues").and_then(Value::as_array)
                && !allowed.iter().any(|a| scalar_string(a) == text)
            {
                bail!("parameter {name}: {text:?} is not one of its AllowedValues");
            }
            let value = match spec.get("Type").and_then(Value::as_str) {
                Some("CommaDelimitedList") => {
                    Value::Array(text.split(',').map(|s| Value::String(s.trim().to_string())).collect())
                }
                _ => Value::String(text),
            };
            out.insert(name.clone(), value);
        }
        Ok(out)
    }

    /// Evaluates every condition of the `Conditions` section (they may refer to parameters,
    /// pseudo parameters and each other).
    pub fn evaluate_conditions(&self, r: &dyn Resolver) -> Result<HashMap<String, bool>, EvalError> {
        let mut done = HashMap::new();
        for name in self.conditions.keys() {
            self.condition_value(name, r, &mut done, &mut Vec::new())?;
        }
        Ok(done)
    }

    fn condition_value(
        &self,
        name: &str,
        r: &dyn Resolver,
        done: &mut HashMap<String, bool>,
        stack: &mut Vec<String>,
    ) -> Result<bool, EvalError> {
        if let Some(v) = done.get(name) {
            return Ok(*v);
        }
        if stack.iter().any(|s| s == name) {
            return Err(EvalError::Unsupported(format!("condition {name} refers to itself")));
        }
        let expr = self
            .conditions
            .get(name)
            .ok_or_else(|| EvalError::Unsupported(format!("no condition {name}")))?;
        // Conditions used inside this one are evaluated first, then read from `done`.
        let mut inner = Vec::new();
        collect_conditions(expr, &mut inner);
        stack.push(name.to_string());
        for c in inner {
            self.condition_value(&c, r, done, stack)?;
        }
        stack.pop();
        let value = truth(&evaluate(
            expr,
            &WithConditions {
                inner: r,
                conditions: done,
            },
        )?)?;
        done.insert(name.to_string(), value);
        Ok(value)
    }

    /// Whether a resource is part of the stack: it has no `Condition`, or its condition is true.
    pub fn active(&self, resource: &Resource, conditions: &HashMap<String, bool>) -> anyhow::Result<bool> {
        match &resource.condition {
            None => Ok(true),
            Some(c) => conditions
                .get(c)
                .copied()
                .ok_or_else(|| anyhow!("Condition {c} is not in the template's Conditions")),
        }
    }
}

/// The names of the conditions an expression uses (`{"Condition": name}`, `Fn::If`'s first item).
fn collect_conditions(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => a.iter().for_each(|i| collect_conditions(i, out)),
        Value::Object(m) => {
            if let (1, Some(Value::String(c))) = (m.len(), m.get("Condition")) {
                out.push(c.clone());
            }
            if let Some(Value::String(c)) = m.get("Fn::If").and_then(|a| a.get(0)) {
                out.push(c.clone());
            }
            m.values().for_each(|i| collect_conditions(i, out));
        }
        _ => {}
    }
}

fn truth(v: &Value) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(EvalError::Unsupported(format!("not a condition value: {other}"))),
    }
}

/// A resolver that also knows the evaluated conditions.
pub struct WithConditions<'a> {
    pub inner: &'a dyn Resolver,
    pub conditions: &'a HashMap<String, bool>,
}

impl Resolver for WithConditions<'_> {
    fn reference_value(&self, name: &str) -> Option<Value> {
        self.inner.reference_value(name)
    }
    fn reference(&self, name: &str) -> Option<String> {
        self.inner.reference(name)
    }
    fn attribute(&self, resource: &str, attribute: &str) -> Option<String> {
        self.inner.attribute(resource, attribute)
    }
    fn condition(&self, name: &str) -> Option<bool> {
        self.conditions.get(name).copied()
    }
}

/// A scalar as CloudFormation turns it into a string (`5` -> `"5"`).
pub fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// YAML -> JSON, expanding short-form intrinsic tags.
fn to_json(y: Yaml) -> anyhow::Result<Value> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => serde_json::to_value(&n)?,
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(seq) => Value::Array(seq.into_iter().map(to_json).collect::<anyhow::Result<_>>()?),
        Yaml::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Yaml::String(s) => s,
                    other => serde_yaml_ng::to_string(&other)?.trim().to_string(),
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let inner = to_json(tagged.value)?;
            let (name, arg) = match tag {
                "Ref" => ("Ref", inner),
                "GetAtt" => {
                    let arg = match inner {
                        Value::String(s) => {
                            let (res, attr) = s
                                .split_once('.')
                                .ok_or_else(|| anyhow!("!GetAtt {s}: expected Resource.Attribute"))?;
                            Value::Array(vec![res.into(), attr.into()])
                        }
                        other => other,
                    };
                    ("Fn::GetAtt", arg)
                }
                "Sub" | "Join" | "Select" | "Split" | "If" | "Equals" | "Not" | "And" | "Or" | "FindInMap"
                | "Base64" | "GetAZs" | "ImportValue" | "Cidr" => {
                    return Ok(Value::Object(Map::from_iter([(format!("Fn::{tag}"), inner)])));
                }
                "Condition" => ("Condition", inner),
                other => bail!("unsupported YAML tag !{other}"),
            };
            Value::Object(Map::from_iter([(name.to_string(), arg)]))
        }
    })
}

/// What `Ref`, `Fn::GetAtt` and conditions resolve to.
pub trait Resolver {
    /// `Ref` of a logical id or parameter; `None` if unknown (yet).
    fn reference(&self, name: &str) -> Option<String>;
    /// `Ref` as a value: a list for a `CommaDelimitedList` parameter; else [`Resolver::reference`].
    fn reference_value(&self, name: &str) -> Option<Value> {
        self.reference(name).map(Value::String)
    }
    /// `Fn::GetAtt`; `None` if unknown (yet).
    fn attribute(&self, resource: &str, attribute: &str) -> Option<String>;
    /// The value of a condition of the template; `None` if unknown.
    fn condition(&self, _name: &str) -> Option<bool> {
        None
    }
}

/// Why an expression could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Refers to something not created yet: try again later.
    #[error("{0} is not available yet")]
    Pending(String),
    #[error("{0}")]
    Unsupported(String),
}

/// Evaluates every intrinsic function inside `v`. `AWS::NoValue` at the top gives `null`.
pub fn evaluate(v: &Value, r: &dyn Resolver) -> Result<Value, EvalError> {
    Ok(eval(v, r)?.unwrap_or(Value::Null))
}

/// `None`: `AWS::NoValue`, which removes the key or list item that holds it.
fn eval(v: &Value, r: &dyn Resolver) -> Result<Option<Value>, EvalError> {
    let list = |arg: &Value, name: &str, len: usize| -> Result<Vec<Value>, EvalError> {
        arg.as_array()
            .filter(|a| a.len() == len)
            .cloned()
            .ok_or_else(|| EvalError::Unsupported(format!("{name} wants a list of {len}: {arg}")))
    };
    match v {
        Value::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(eval(i, r)?);
            }
            Ok(Some(Value::Array(out)))
        }
        Value::Object(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next().expect("one entry");
            match k.as_str() {
                "Ref" => {
                    let name = arg
                        .as_str()
                        .ok_or_else(|| EvalError::Unsupported("Ref wants a name".into()))?;
                    if name == "AWS::NoValue" {
                        return Ok(None);
                    }
                    r.reference_value(name)
                        .map(Some)
                        .ok_or_else(|| EvalError::Pending(name.to_string()))
                }
                "Fn::GetAtt" => {
                    let parts: Vec<String> = match evaluate(arg, r)? {
                        Value::Array(a) => a.iter().map(scalar_string).collect(),
                        Value::String(s) => s.splitn(2, '.').map(str::to_owned).collect(),
                        _ => vec![],
                    };
                    let [res, attr] = parts.as_slice() else {
                        return Err(EvalError::Unsupported(format!("Fn::GetAtt {arg}")));
                    };
                    r.attribute(res, attr)
                        .map(|v| Some(Value::String(v)))
                        .ok_or_else(|| EvalError::Pending(format!("{res}.{attr}")))
                }
                "Fn::Sub" => {
                    let (text, vars) = match arg {
                        Value::String(s) => (s.clone(), Map::new()),
                        Value::Array(a) if a.len() == 2 => (
                            a[0].as_str().unwrap_or_default().to_string(),
                            evaluate(&a[1], r)?.as_object().cloned().unwrap_or_default(),
                        ),
                        _ => return Err(EvalError::Unsupported(format!("Fn::Sub {arg}"))),
                    };
                    substitute(&text, &vars, r).map(|s| Some(Value::String(s)))
                }
                "Fn::Join" => {
                    let a = list(arg, "Fn::Join", 2)?;
                    let sep = a[0].as_str().unwrap_or_default();
                    let items = evaluate(&a[1], r)?;
                    let parts: Vec<String> = items
                        .as_array()
                        .map(|v| v.iter().map(scalar_string).collect())
                        .unwrap_or_default();
                    Ok(Some(Value::String(parts.join(sep))))
                }
                "Fn::Split" => {
                    let a = list(arg, "Fn::Split", 2)?;
                    let sep = a[0].as_str().unwrap_or_default();
                    let text = scalar_string(&evaluate(&a[1], r)?);
                    Ok(Some(Value::Array(
                        text.split(sep).map(|p| Value::String(p.to_string())).collect(),
                    )))
                }
                "Fn::Select" => {
                    let a = list(arg, "Fn::Select", 2)?;
                    let index: usize = scalar_string(&evaluate(&a[0], r)?)
                        .parse()
                        .map_err(|_| EvalError::Unsupported(format!("Fn::Select index {}", a[0])))?;
                    let items = evaluate(&a[1], r)?;
                    items
                        .as_array()
                        .and_then(|i| i.get(index))
                        .cloned()
                        .map(Some)
                        .ok_or_else(|| EvalError::Unsupported(format!("Fn::Select {index} out of {items}")))
                }
                "Fn::If" => {
                    let a = list(arg, "Fn::If", 3)?;
                    let name = a[0]
                        .as_str()
                        .ok_or_else(|| EvalError::Unsupported("Fn::If wants a condition name".into()))?;
                    let chosen = if condition(r, name)? { &a[1] } else { &a[2] };
                    eval(chosen, r)
                }
                "Condition" if arg.is_string() => {
                    let name = arg.as_str().unwrap_or_default();
                    Ok(Some(Value::Bool(condition(r, name)?)))
                }
                "Fn::Equals" => {
                    let a = list(arg, "Fn::Equals", 2)?;
                    let (x, y) = (evaluate(&a[0], r)?, evaluate(&a[1], r)?);
                    Ok(Some(Value::Bool(x == y || scalar_string(&x) == scalar_string(&y))))
                }
                "Fn::Not" => {
                    let a = list(arg, "Fn::Not", 1)?;
                    Ok(Some(Value::Bool(!truth(&evaluate(&a[0], r)?)?)))
                }
                "Fn::And" | "Fn::Or" => {
                    let items = arg
                        .as_array()
                        .ok_or_else(|| EvalError::Unsupported(format!("{k} wants a list")))?;
                    let values = items
                        .iter()
                        .map(|i| truth(&evaluate(i, r)?))
                        .collect::<Result<Vec<bool>, _>>()?;
                    let out = if k == "Fn::And" {
                        values.iter().all(|b| *b)
                    } else {
                        values.iter().any(|b| *b)
                    };
                    Ok(Some(Value::Bool(out)))
                }
                k if k.starts_with("Fn::") => Err(EvalError::Unsupported(format!(
                    "{k} is not supported by the local stack"
                ))),
                _ => object(m, r),
            }
        }
        Value::Object(m) => object(m, r),
        other => Ok(Some(other.clone())),
    }
}

fn object(m: &Map<String, Value>, r: &dyn Resolver) -> Result<Option<Value>, EvalError> {
    let mut out = Map::new();
    for (k, v) in m {
        if let Some(v) = eval(v, r)? {
            out.insert(k.clone(), v);
        }
    }
    Ok(Some(Value::Object(out)))
}

fn condition(r: &dyn Resolver, name: &str) -> Result<bool, EvalError> {
    r.condition(name)
        .ok_or_else(|| EvalError::Unsupported(format!("condition {name} is unknown")))
}

fn substitute(text: &str, vars: &Map<String, Value>, r: &dyn Resolver) -> Result<String, EvalError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        if let Some(literal) = after.strip_prefix('!') {
            out.push_str("${");
            rest = literal;
            continue;
        }
        let end = after
            .find('}')
            .ok_or_else(|| EvalError::Unsupported(format!("unclosed ${{ in {text:?}")))?;
        let name = &after[..end];
        let value = if let Some(v) = vars.get(name) {
            scalar_string(v)
        } else if let Some((res, attr)) = name.split_once('.') {
            r.attribute(res, attr)
                .ok_or_else(|| EvalError::Pending(name.to_string()))?
        } else {
            r.reference_value(name)
                .map(|v| scalar_string(&v))
                .ok_or_else(|| EvalError::Pending(name.to_string()))?
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixed;
    impl Resolver for Fixed {
        fn reference(&self, name: &str) -> Option<String> {
            match name {
                "AWS::StackName" => Some("demo".into()),
                "Queue" => Some("http://q/url".into()),
                _ => None,
            }
        }
        fn attribute(&self, res: &str, attr: &str) -> Option<String> {
            (res == "Queue" && attr == "Arn").then(|| "arn:aws:sqs:us-east-1:0:q".into())
        }
    }

    #[test]
    fn short_form_tags_become_long_form_and_evaluate() {
        let t = Template::parse(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      A: !Ref Queue\n      B: !GetAtt Queue.Arn\n      C: !Sub \"${AWS::StackName}-x-${Queue.Arn}-${!Literal}\"\n      D: !Join [\"-\", [a, !Ref Queue]]\n",
        )
        .unwrap();
        let props = &t.resources["F"].properties;
        assert_eq!(props["A"], json!({"Ref": "Queue"}));
        let v = evaluate(props, &Fixed).unwrap();
        assert_eq!(v["A"], "http://q/url");
        assert_eq!(v["B"], "arn:aws:sqs:us-east-1:0:q");
        assert_eq!(v["C"], "demo-x-arn:aws:sqs:us-east-1:0:q-${Literal}");
        assert_eq!(v["D"], "a-http://q/url");
    }

    #[test]
    fn unknown_references_are_pending_and_unknown_functions_are_refused() {
        assert!(matches!(
            evaluate(&json!({"Ref": "Later"}), &Fixed),
            Err(EvalError::Pending(_))
        ));
        assert!(matches!(
            evaluate(&json!({"Fn::If": []}), &Fixed),
            Err(EvalError::Unsupported(_))
        ));
    }

    #[test]
    fn conditions_if_novalue_split_and_parameter_overrides_evaluate_like_cloudformation() {
        let t = Template::parse(
            r#"
Parameters:
  Mode: { Type: String, Default: jwt, AllowedValues: [jwt, "off"] }
  Issuer: { Type: String, Default: "" }
  Audience: { Type: CommaDelimitedList, Default: "a,b" }
  Origins: { Type: String, Default: "" }
Conditions:
  On: !Equals [!Ref Mode, jwt]
  Off: !Not [!Condition On]
  External: !Not [!Equals [!Ref Issuer, ""]]
  Both: !And [!Condition On, !Condition External]
  Either: !Or [!Condition Off, !Condition External]
  HasOrigins: !Not [!Equals [!Ref Origins, ""]]
Resources:
  Pool: { Type: AWS::Cognito::UserPool, Condition: Off }
  F:
    Type: AWS::Serverless::Function
    Properties:
      Iss: !If [External, !Ref Issuer, !GetAtt Pool.ProviderURL]
      Aud: !Ref Audience
      Cors: !If [HasOrigins, { AllowOrigins: !Split [",", !Ref Origins] }, !Ref AWS::NoValue]
      List: [x, !If [On, !Ref AWS::NoValue, y], !Select [1, !Split ["/", "a/b/c"]]]
      Joined: !Join ["-", !Ref Audience]
"#,
        )
        .unwrap();
        struct Params(HashMap<String, Value>, HashMap<String, bool>);
        impl Resolver for Params {
            fn reference(&self, name: &str) -> Option<String> {
                self.reference_value(name).map(|v| scalar_string(&v))
            }
            fn reference_value(&self, name: &str) -> Option<Value> {
                self.0.get(name).cloned()
            }
            fn attribute(&self, _: &str, _: &str) -> Option<String> {
                None
            }
            fn condition(&self, name: &str) -> Option<bool> {
                self.1.get(name).copied()
            }
        }
        let overrides = HashMap::from([
            ("Issuer".to_string(), "https://issuer.test".to_string()),
            ("Origins".to_string(), "https://a.test,https://b.test".to_string()),
        ]);
        let params = t.parameter_values(&overrides).unwrap();
        assert_eq!(params["Audience"], json!(["a", "b"]));
        let conditions = t.evaluate_conditions(&Params(params.clone(), HashMap::new())).unwrap();
        assert_eq!(
            conditions,
            HashMap::from([
                ("On".into(), true),
                ("Off".into(), false),
                ("External".into(), true),
                ("Both".into(), true),
                ("Either".into(), true),
                ("HasOrigins".into(), true),
            ])
        );
        assert!(!t.active(&t.resources["Pool"], &conditions).unwrap());
        // Only the branch taken is evaluated: Pool.ProviderURL is never asked for.
        let v = evaluate(&t.resources["F"].properties, &Params(params, conditions)).unwrap();
        assert_eq!(v["Iss"], "https://issuer.test");
        assert_eq!(v["Aud"], json!(["a", "b"]));
        assert_eq!(v["Cors"]["AllowOrigins"], json!(["https://a.test", "https://b.test"]));
        assert_eq!(v["List"], json!(["x", "b"]), "AWS::NoValue leaves the item out");
        assert_eq!(v["Joined"], "a-b");

        // Defaults: no origins, so no Cors key at all.
        let params = t.parameter_values(&HashMap::new()).unwrap();
        let conditions = t.evaluate_conditions(&Params(params.clone(), HashMap::new())).unwrap();
        assert!(t.active(&t.resources["Pool"], &conditions).is_ok());
        let mut props = t.resources["F"].properties.clone();
        props.as_object_mut().unwrap().remove("Iss");
        let v = evaluate(&props, &Params(params, conditions)).unwrap();
        assert!(v.get("Cors").is_none());

        let bad = HashMap::from([("Mode".to_string(), "maybe".to_string())]);
        assert!(
            t.parameter_values(&bad)
                .unwrap_err()
                .to_string()
                .contains("AllowedValues")
        );
        let unknown = HashMap::from([("Nope".to_string(), "1".to_string())]);
        assert!(t.parameter_values(&unknown).is_err());
    }

    #[test]
    fn the_project_template_parses() {
        let t = Template::load(&crate::testing::template_path()).unwrap();
        assert_eq!(t.resources["WorkerFunction"].kind, "AWS::Serverless::Function");
        assert_eq!(t.parameter_defaults()["LeaseSeconds"], "90");
    }
}

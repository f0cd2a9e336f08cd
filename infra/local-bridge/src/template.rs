//! Reads a SAM / CloudFormation template and evaluates its intrinsic functions.
//!
//! YAML short forms (`!Ref X`, `!GetAtt X.Arn`, `!Sub "..."`) are turned into their long forms
//! (`{"Ref": "X"}`, ...) first, so the rest works on plain JSON values.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

/// A parsed template, intrinsics not yet evaluated.
#[derive(Debug, Clone)]
pub struct Template {
    pub parameters: BTreeMap<String, Value>,
    pub globals: Value,
    pub resources: BTreeMap<String, Resource>,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: String,
    pub properties: Value,
    pub metadata: Value,
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
                },
            );
        }
        let parameters = section("Parameters")
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(Template {
            parameters,
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
}

fn scalar_string(v: &Value) -> String {
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

/// What `Ref` and `Fn::GetAtt` resolve to.
pub trait Resolver {
    /// `Ref` of a logical id or parameter; `None` if unknown (yet).
    fn reference(&self, name: &str) -> Option<String>;
    /// `Fn::GetAtt`; `None` if unknown (yet).
    fn attribute(&self, resource: &str, attribute: &str) -> Option<String>;
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

/// Evaluates every intrinsic function inside `v`.
pub fn evaluate(v: &Value, r: &dyn Resolver) -> Result<Value, EvalError> {
    match v {
        Value::Array(items) => Ok(Value::Array(
            items.iter().map(|i| evaluate(i, r)).collect::<Result<_, _>>()?,
        )),
        Value::Object(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next().expect("one entry");
            match k.as_str() {
                "Ref" => {
                    let name = arg
                        .as_str()
                        .ok_or_else(|| EvalError::Unsupported("Ref wants a name".into()))?;
                    r.reference(name)
                        .map(Value::String)
                        .ok_or_else(|| EvalError::Pending(name.to_string()))
                }
                "Fn::GetAtt" => {
                    let parts: Vec<String> = match evaluate(arg, r)? {
                        Value::Array(a) => a.iter().map(|p| scalar_string(p)).collect(),
                        Value::String(s) => s.splitn(2, '.').map(str::to_owned).collect(),
                        _ => vec![],
                    };
                    let [res, attr] = parts.as_slice() else {
                        return Err(EvalError::Unsupported(format!("Fn::GetAtt {arg}")));
                    };
                    r.attribute(res, attr)
                        .map(Value::String)
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
                    substitute(&text, &vars, r).map(Value::String)
                }
                "Fn::Join" => {
                    let a = arg
                        .as_array()
                        .filter(|a| a.len() == 2)
                        .ok_or_else(|| EvalError::Unsupported("Fn::Join".into()))?;
                    let sep = a[0].as_str().unwrap_or_default();
                    let items = evaluate(&a[1], r)?;
                    let parts: Vec<String> = items
                        .as_array()
                        .map(|v| v.iter().map(scalar_string).collect())
                        .unwrap_or_default();
                    Ok(Value::String(parts.join(sep)))
                }
                k if k.starts_with("Fn::") => Err(EvalError::Unsupported(format!(
                    "{k} is not supported by the local stack"
                ))),
                _ => Ok(Value::Object(
                    m.iter()
                        .map(|(k, v)| Ok((k.clone(), evaluate(v, r)?)))
                        .collect::<Result<_, EvalError>>()?,
                )),
            }
        }
        Value::Object(m) => Ok(Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), evaluate(v, r)?)))
                .collect::<Result<_, EvalError>>()?,
        )),
        other => Ok(other.clone()),
    }
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
            r.reference(name).ok_or_else(|| EvalError::Pending(name.to_string()))?
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
    fn the_project_template_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let t = Template::load(&path).unwrap();
        assert_eq!(t.resources["WorkerFunction"].kind, "AWS::Serverless::Function");
        assert_eq!(t.parameter_defaults()["LeaseSeconds"], "90");
    }
}

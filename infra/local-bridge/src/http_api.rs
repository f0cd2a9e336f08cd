//! The HTTP API as the template declares it: routes (from the functions' `HttpApi` events), JWT
//! authorizers, which route each authorizer guards, route throttling and CORS.
//!
//! Which authorizer guards a route follows SAM's rules: a `security` the `DefinitionBody` gives
//! the path and method wins (an empty list: public); else the event's `Auth.Authorizer` (`NONE`:
//! public); else the API's `Auth.DefaultAuthorizer`; else the route is public.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value, json};

use crate::template::{EvalError, Resolver, Template, evaluate, scalar_string};

/// A route of the HTTP API.
#[derive(Debug, Clone)]
pub struct HttpRoute {
    /// `ANY` or an HTTP method.
    pub method: String,
    /// `/`, `/jobs/{id}`, `/{proxy+}`...
    pub path: String,
    pub function: String,
    /// The name of the JWT authorizer that guards it; `None`: public.
    pub authorizer: Option<String>,
}

/// A JWT authorizer (`Auth.Authorizers.NAME.JwtConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthorizer {
    pub issuer: String,
    /// Accepted values of the token's `aud` (or of `client_id` when it has no `aud`).
    pub audience: Vec<String>,
    /// `$request.header.Authorization` (the only identity source supported locally).
    pub identity_header: String,
}

/// `DefaultRouteSettings`: a token bucket per route.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    /// Requests per second, steady.
    pub rate: f64,
    /// Requests at once.
    pub burst: f64,
}

/// Everything the gateway needs about the API.
#[derive(Debug, Clone, Default)]
pub struct HttpApi {
    pub routes: Vec<HttpRoute>,
    pub authorizers: BTreeMap<String, JwtAuthorizer>,
    pub throttle: Option<Throttle>,
    /// `CorsConfiguration`, evaluated; `None` when absent (no CORS headers at all).
    pub cors: Option<Value>,
}

/// Reads the HTTP API from `template`, with `r` resolving references (parameters, resources) and
/// `conditions` saying which resources exist. One `AWS::Serverless::HttpApi` at most is active.
pub fn from_template(
    template: &Template,
    r: &dyn Resolver,
    conditions: &HashMap<String, bool>,
) -> anyhow::Result<HttpApi> {
    let mut api = HttpApi::default();
    let apis: Vec<&String> = template
        .resources
        .iter()
        .filter(|(_, res)| res.kind == "AWS::Serverless::HttpApi")
        .filter(|(_, res)| template.active(res, conditions).unwrap_or(false))
        .map(|(id, _)| id)
        .collect();
    if apis.len() > 1 {
        bail!("the local stack serves one HttpApi; active: {apis:?}");
    }
    let (props, api_ref) = match apis.first() {
        Some(id) => {
            let res = &template.resources[*id];
            let props = evaluate(&res.properties, r).map_err(|e| anyhow!("{id}: {e}"))?;
            (props, r.reference(id))
        }
        None => (Value::Object(Map::new()), None),
    };
    let auth = props.get("Auth").cloned().unwrap_or(Value::Null);
    for (name, a) in auth.get("Authorizers").and_then(Value::as_object).into_iter().flatten() {
        let jwt = a
            .get("JwtConfiguration")
            .ok_or_else(|| anyhow!("authorizer {name}: only JWT authorizers are supported by the local stack"))?;
        let source = a.get("IdentitySource").map(scalar_string).unwrap_or_default();
        let header = source
            .strip_prefix("$request.header.")
            .ok_or_else(|| anyhow!("authorizer {name}: IdentitySource {source:?} (only $request.header.X locally)"))?;
        let audience = match jwt.get("audience") {
            Some(Value::Array(a)) => a.iter().map(scalar_string).filter(|s| !s.is_empty()).collect(),
            Some(Value::String(s)) => s.split(',').map(str::to_owned).filter(|s| !s.is_empty()).collect(),
            _ => vec![],
        };
        api.authorizers.insert(
            name.clone(),
            JwtAuthorizer {
                issuer: jwt.get("issuer").map(scalar_string).unwrap_or_default(),
                audience,
                identity_header: header.to_ascii_lowercase(),
            },
        );
    }
    let default_authorizer = auth.get("DefaultAuthorizer").map(scalar_string);
    if let Some(settings) = props.get("DefaultRouteSettings") {
        let number = |k: &str| -> anyhow::Result<Option<f64>> {
            settings
                .get(k)
                .map(|v| {
                    scalar_string(v)
                        .parse::<f64>()
                        .with_context(|| format!("DefaultRouteSettings.{k}"))
                })
                .transpose()
        };
        if let (Some(rate), Some(burst)) = (number("ThrottlingRateLimit")?, number("ThrottlingBurstLimit")?) {
            api.throttle = Some(Throttle { rate, burst });
        }
    }
    api.cors = match props.get("CorsConfiguration") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => None,
        // SAM: `true` allows every origin, method and header.
        Some(Value::Bool(true)) => Some(json!({"AllowOrigins": ["*"], "AllowMethods": ["*"], "AllowHeaders": ["*"]})),
        Some(c) => Some(c.clone()),
    };
    let paths = props.pointer("/DefinitionBody/paths").cloned().unwrap_or(Value::Null);

    for (id, res) in &template.resources {
        if res.kind != "AWS::Serverless::Function" || !template.active(res, conditions)? {
            continue;
        }
        let function = crate::provision::binary_name(id, &res.metadata);
        for (event_id, event) in res
            .properties
            .get("Events")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                continue;
            }
            let raw = event.get("Properties").cloned().unwrap_or(Value::Null);
            let props = match evaluate(&raw, r) {
                Ok(p) => p,
                // On an API that is not part of the stack (its Condition is false).
                Err(EvalError::Pending(what)) if inactive(template, conditions, &what) => continue,
                Err(e) => bail!("{id}.Events.{event_id}: {e}"),
            };
            if let (Some(api_id), Some(ours)) = (props.get("ApiId"), &api_ref)
                && &scalar_string(api_id) != ours
            {
                continue;
            }
            let method = props
                .get("Method")
                .map(scalar_string)
                .unwrap_or("ANY".into())
                .to_uppercase();
            let path = props.get("Path").map(scalar_string).unwrap_or("/".into());
            let authorizer = route_authorizer(&paths, &method, &path, props.get("Auth"), default_authorizer.as_deref());
            if let Some(a) = &authorizer
                && !api.authorizers.contains_key(a)
            {
                bail!("{id}.Events.{event_id}: authorizer {a} is not among the HttpApi's Authorizers");
            }
            api.routes.push(HttpRoute {
                method,
                path,
                function: function.clone(),
                authorizer,
            });
        }
    }
    Ok(api)
}

fn inactive(template: &Template, conditions: &HashMap<String, bool>, name: &str) -> bool {
    template
        .resources
        .get(name)
        .is_some_and(|res| !template.active(res, conditions).unwrap_or(true))
}

/// SAM's precedence: the DefinitionBody's `security`, the event's `Auth.Authorizer`, the default.
fn route_authorizer(
    paths: &Value,
    method: &str,
    path: &str,
    auth: Option<&Value>,
    default: Option<&str>,
) -> Option<String> {
    let key = if method == "ANY" {
        "x-amazon-apigateway-any-method".to_string()
    } else {
        method.to_ascii_lowercase()
    };
    let named = |name: String| (name != "NONE").then_some(name);
    if let Some(security) = paths
        .get(path)
        .and_then(|p| p.get(&key))
        .and_then(|m| m.get("security"))
    {
        return security
            .as_array()
            .and_then(|s| s.first())
            .and_then(Value::as_object)
            .and_then(|o| o.keys().next().cloned())
            .and_then(named);
    }
    if let Some(a) = auth.and_then(|a| a.get("Authorizer")) {
        return named(scalar_string(a));
    }
    default.map(str::to_owned).and_then(named)
}

/// A resolver for reading the API without provisioning anything: parameters and pseudo
/// parameters have their values, a resource's `Ref` is its logical id and its attributes are
/// `Id.Attribute`. For in-process tests of the gateway.
pub struct Offline<'a> {
    pub stack: &'a str,
    pub params: &'a HashMap<String, Value>,
    pub template: &'a Template,
    pub conditions: &'a HashMap<String, bool>,
}

impl Resolver for Offline<'_> {
    fn reference(&self, name: &str) -> Option<String> {
        self.reference_value(name).map(|v| scalar_string(&v))
    }
    fn reference_value(&self, name: &str) -> Option<Value> {
        crate::provision::pseudo_parameter(self.stack, name)
            .map(Value::String)
            .or_else(|| self.params.get(name).cloned())
            .or_else(|| {
                let res = self.template.resources.get(name)?;
                self.template
                    .active(res, self.conditions)
                    .ok()?
                    .then(|| Value::String(name.to_string()))
            })
    }
    fn attribute(&self, resource: &str, attribute: &str) -> Option<String> {
        self.template
            .resources
            .contains_key(resource)
            .then(|| format!("{resource}.{attribute}"))
    }
    fn condition(&self, name: &str) -> Option<bool> {
        self.conditions.get(name).copied()
    }
}

/// The HTTP API of `template` with these parameter overrides, without provisioning anything.
pub fn offline(template: &Template, overrides: &HashMap<String, String>) -> anyhow::Result<HttpApi> {
    let options = crate::provision::Options {
        stack_name: "offline".into(),
        visibility_timeout: None,
        parameters: overrides.clone(),
        alarms: Default::default(),
    };
    let (params, conditions) = crate::provision::parameters_and_conditions(template, &options)?;
    let r = Offline {
        stack: "offline",
        params: &params,
        template,
        conditions: &conditions,
    };
    from_template(template, &r, &conditions)
}

//! The WebSocket API as the template declares it (`AWS::ApiGatewayV2::Api` with
//! `ProtocolType: WEBSOCKET`, its `Route`s, `Integration`s, `RouteResponse`s and `Stage`):
//! route keys, the route selection expression, the function behind each route and which routes
//! send the function's answer back to the client. [`crate::websocket`] serves it.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use serde_json::Value;

use crate::provision::Physical;
use crate::template::Template;

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsRoute {
    /// `$connect`, `$disconnect`, `$default` or a custom key (`subscribe`).
    pub key: String,
    /// The function name (the binary `cargo lambda watch` serves).
    pub function: String,
    /// A route response is configured: the function's `body` goes back to the client.
    pub responds: bool,
}

/// A WebSocket API.
#[derive(Debug, Clone)]
pub struct WebSocketApi {
    pub logical_id: String,
    /// The API's id (its `Ref`).
    pub id: String,
    /// `$request.body.<field>`: the field of a JSON message that names its route.
    pub selection_field: String,
    pub routes: Vec<WsRoute>,
    /// The stage's name (`live`): locally `ws://host:port/` and `ws://host:port/<stage>` both work.
    pub stage: String,
}

impl WebSocketApi {
    pub fn route(&self, key: &str) -> Option<&WsRoute> {
        self.routes.iter().find(|r| r.key == key)
    }

    /// The route a message goes to: its selection field's value if a route has that key, else
    /// `$default` (if any).
    pub fn select(&self, body: &str) -> Option<&WsRoute> {
        let by_field = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get(&self.selection_field).and_then(Value::as_str).map(str::to_owned))
            .filter(|k| !k.starts_with('$'))
            .and_then(|k| self.route(&k));
        by_field.or_else(|| self.route("$default"))
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The function an integration URI names:
/// `arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/arn:aws:lambda:...:function:NAME/invocations`.
pub fn function_of_integration_uri(uri: &str) -> Option<String> {
    let arn = uri.split("/functions/").nth(1)?.strip_suffix("/invocations")?;
    let name = arn.split(":function:").nth(1)?;
    Some(name.split(':').next()?.to_string())
}

/// The template's WebSocket API, if it has one (one at most locally).
pub fn from_template(
    template: &Template,
    created: &BTreeMap<String, Physical>,
    evaluated: &BTreeMap<String, Value>,
) -> anyhow::Result<Option<WebSocketApi>> {
    let of_kind = |kind: &str| {
        template
            .resources
            .iter()
            .filter(move |(id, r)| r.kind == kind && created.contains_key(*id))
            .map(|(id, _)| (id.as_str(), &evaluated[id]))
            .collect::<Vec<_>>()
    };
    let apis: Vec<_> = of_kind("AWS::ApiGatewayV2::Api")
        .into_iter()
        .filter(|(_, p)| text(p, "ProtocolType").as_deref() == Some("WEBSOCKET"))
        .collect();
    let Some((api_id, api)) = apis.first().copied() else {
        return Ok(None);
    };
    if apis.len() > 1 {
        bail!(
            "the local stack serves one WebSocket API, the template has {}",
            apis.len()
        );
    }
    let reference = created[api_id].reference.clone();
    let expression = text(api, "RouteSelectionExpression").unwrap_or_default();
    let selection_field = expression
        .strip_prefix("$request.body.")
        .ok_or_else(|| {
            anyhow!("{api_id}: RouteSelectionExpression {expression:?}: only $request.body.<field> is served locally")
        })?
        .to_string();
    let integrations: BTreeMap<&str, String> = of_kind("AWS::ApiGatewayV2::Integration")
        .into_iter()
        .filter(|(_, p)| text(p, "ApiId").as_deref() == Some(reference.as_str()))
        .map(|(id, p)| {
            let kind = text(p, "IntegrationType").unwrap_or_default();
            if kind != "AWS_PROXY" {
                bail!("{id}: IntegrationType {kind}: only AWS_PROXY (a Lambda function) is served locally");
            }
            let uri = text(p, "IntegrationUri").unwrap_or_default();
            let function = function_of_integration_uri(&uri)
                .ok_or_else(|| anyhow!("{id}: IntegrationUri {uri:?} names no function"))?;
            Ok((id, function))
        })
        .collect::<anyhow::Result<_>>()?;
    let responses: Vec<String> = of_kind("AWS::ApiGatewayV2::RouteResponse")
        .into_iter()
        .filter_map(|(_, p)| text(p, "RouteId"))
        .collect();
    let mut routes = Vec::new();
    for (id, p) in of_kind("AWS::ApiGatewayV2::Route") {
        if text(p, "ApiId").as_deref() != Some(reference.as_str()) {
            continue;
        }
        let key = text(p, "RouteKey").ok_or_else(|| anyhow!("{id}: RouteKey is required"))?;
        let target = text(p, "Target").unwrap_or_default();
        let integration = target
            .strip_prefix("integrations/")
            .ok_or_else(|| anyhow!("{id}: Target {target:?} is not integrations/<id>"))?;
        let function = integrations
            .get(integration)
            .cloned()
            .ok_or_else(|| anyhow!("{id}: no integration {integration} of {api_id}"))?;
        if text(p, "AuthorizationType").is_some_and(|a| a != "NONE") {
            bail!("{id}: only AuthorizationType NONE is served locally ($connect checks the token itself)");
        }
        let responds = text(p, "RouteResponseSelectionExpression").is_some() && responses.iter().any(|r| r == id);
        routes.push(WsRoute {
            key,
            function,
            responds,
        });
    }
    let stage = of_kind("AWS::ApiGatewayV2::Stage")
        .into_iter()
        .find(|(_, p)| text(p, "ApiId").as_deref() == Some(reference.as_str()))
        .and_then(|(_, p)| text(p, "StageName"))
        .ok_or_else(|| anyhow!("{api_id}: no Stage"))?;
    Ok(Some(WebSocketApi {
        logical_id: api_id.to_string(),
        id: reference,
        selection_field,
        routes,
        stage,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_uris_name_their_function() {
        assert_eq!(
            function_of_integration_uri(
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:live/invocations"
            )
            .as_deref(),
            Some("live")
        );
        assert_eq!(function_of_integration_uri("arn:aws:apigateway:x"), None);
    }

    #[test]
    fn messages_are_routed_by_their_action_else_to_default() {
        let api = WebSocketApi {
            logical_id: "LiveApi".into(),
            id: "x".into(),
            selection_field: "action".into(),
            routes: ["$connect", "subscribe", "$default"]
                .iter()
                .map(|k| WsRoute {
                    key: k.to_string(),
                    function: "live".into(),
                    responds: true,
                })
                .collect(),
            stage: "live".into(),
        };
        assert_eq!(api.select(r#"{"action":"subscribe"}"#).unwrap().key, "subscribe");
        assert_eq!(api.select(r#"{"action":"dance"}"#).unwrap().key, "$default");
        assert_eq!(api.select("not json").unwrap().key, "$default");
        assert_eq!(
            api.select(r#"{"action":"$connect"}"#).unwrap().key,
            "$default",
            "a message never selects $connect"
        );
    }
}

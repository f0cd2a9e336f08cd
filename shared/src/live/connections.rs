//! Who is connected to the WebSocket API, as whom, and what each connection subscribed to.
//!
//! The connections table (`CONNECTIONS_TABLE`, pk/sk, TTL `expires_at`):
//!
//! | item         | pk                 | sk        | attributes                                   |
//! |--------------|--------------------|-----------|----------------------------------------------|
//! | connection   | `CONN#<id>`        | `CONN`    | `owner`, `admin`, `topics` (string set), `connected_at`, `expires_at` |
//! | subscription | `TOPIC#<topic>`    | `<id>`    | `owner`, `admin`, `expires_at`               |
//!
//! A topic is `job#<job id>`, `owner#<owner>` or `all` ([`Topic::key`]). A job change queries its
//! three topics; each subscription carries its connection's owner and admin flag, so the fan-out
//! decides who may see the job without reading the connection items. Items expire two hours
//! after `$connect` (API Gateway's longest connection), so the table cleans itself even when a
//! `$disconnect` is lost.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::{Topic, Viewer};
use crate::auth::Owner;
use crate::error::{Error, Result};

/// API Gateway closes a WebSocket connection after two hours at most.
pub const CONNECTION_LIFETIME_SECS: i64 = 2 * 3600;

/// A live connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: String,
    pub viewer: Viewer,
    pub connected_at: OffsetDateTime,
}

impl Connection {
    pub fn expires_at(&self) -> i64 {
        self.connected_at.unix_timestamp() + CONNECTION_LIFETIME_SECS
    }
}

/// A connection subscribed to a topic, as the fan-out sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub connection_id: String,
    pub viewer: Viewer,
}

#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Records a new connection (`$connect`).
    async fn connect(&self, connection: &Connection) -> Result<()>;
    async fn get(&self, id: &str) -> Result<Option<Connection>>;
    /// Subscribes a known connection; `NotFound` when it is gone.
    async fn subscribe(&self, connection: &Connection, topic: &Topic) -> Result<()>;
    async fn unsubscribe(&self, id: &str, topic: &Topic) -> Result<()>;
    /// Deletes a connection and its subscriptions (`$disconnect`, or a 410 Gone); idempotent.
    async fn disconnect(&self, id: &str) -> Result<()>;
    /// Every subscription to any of `topics`, one per connection.
    async fn subscribers(&self, topics: &[Topic]) -> Result<Vec<Subscriber>>;
}

const PK: &str = "pk";
const SK: &str = "sk";
const CONN_SK: &str = "CONN";

fn conn_pk(id: &str) -> String {
    format!("CONN#{id}")
}

fn topic_pk(topic: &Topic) -> String {
    topic_key_pk(&topic.key())
}

/// The partition of a topic by its key ([`Topic::key`], as a connection item lists it).
fn topic_key_pk(key: &str) -> String {
    format!("TOPIC#{key}")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// The connections table in DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoConnectionStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoConnectionStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoConnectionStore {
            client,
            table: table.into(),
        }
    }

    /// The connection's own item (strongly consistent), if it still exists.
    async fn connection_item(&self, id: &str) -> Result<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(conn_pk(id)))
            .key(SK, s(CONN_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::aws("GetItem connection", e))?;
        Ok(out.item)
    }
}

fn viewer_of(item: &HashMap<String, AttributeValue>) -> Result<Viewer> {
    let owner = item
        .get("owner")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| Error::Corrupt("connection item without owner".into()))?;
    Ok(Viewer {
        owner: Owner::parse(owner).map_err(|_| Error::Corrupt(format!("connection owner {owner:?}")))?,
        admin: item
            .get("admin")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    })
}

#[async_trait]
impl ConnectionStore for DynamoConnectionStore {
    async fn connect(&self, c: &Connection) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(conn_pk(&c.id)))
            .item(SK, s(CONN_SK))
            .item("owner", s(c.viewer.owner.as_str()))
            .item("admin", AttributeValue::Bool(c.viewer.admin))
            .item(
                "connected_at",
                AttributeValue::N(c.connected_at.unix_timestamp().to_string()),
            )
            .item("expires_at", AttributeValue::N(c.expires_at().to_string()))
            .send()
            .await
            .map_err(|e| Error::aws("PutItem connection", e))?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Connection>> {
        let Some(item) = self.connection_item(id).await? else {
            return Ok(None);
        };
        let connected = item
            .get("connected_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Ok(Some(Connection {
            id: id.to_string(),
            viewer: viewer_of(&item)?,
            connected_at: connected,
        }))
    }

    async fn subscribe(&self, c: &Connection, topic: &Topic) -> Result<()> {
        // The connection item lists its topics (for $disconnect); only while it exists.
        let added = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(conn_pk(&c.id)))
            .key(SK, s(CONN_SK))
            .update_expression("ADD topics :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", AttributeValue::Ss(vec![topic.key()]))
            .send()
            .await;
        if let Err(e) = added {
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception())
            {
                return Err(Error::NotFound(format!("connection {} is gone", c.id)));
            }
            return Err(Error::aws("UpdateItem connection topics", e));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(topic_pk(topic)))
            .item(SK, s(&c.id))
            .item("owner", s(c.viewer.owner.as_str()))
            .item("admin", AttributeValue::Bool(c.viewer.admin))
            .item("expires_at", AttributeValue::N(c.expires_at().to_string()))
            .send()
            .await
            .map_err(|e| Error::aws("PutItem subscription", e))?;
        Ok(())
    }

    async fn unsubscribe(&self, id: &str, topic: &Topic) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(topic_pk(topic)))
            .key(SK, s(id))
            .send()
            .await
            .map_err(|e| Error::aws("DeleteItem subscription", e))?;
        let removed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(conn_pk(id)))
            .key(SK, s(CONN_SK))
            .update_expression("DELETE topics :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", AttributeValue::Ss(vec![topic.key()]))
            .send()
            .await;
        match removed {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::aws("UpdateItem connection topics", e)),
        }
    }

    async fn disconnect(&self, id: &str) -> Result<()> {
        let topics: Vec<String> = self
            .connection_item(id)
            .await?
            .as_ref()
            .and_then(|i| i.get("topics"))
            .and_then(|t| t.as_ss().ok())
            .cloned()
            .unwrap_or_default();
        for key in topics {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key(PK, s(topic_key_pk(&key)))
                .key(SK, s(id))
                .send()
                .await
                .map_err(|e| Error::aws("DeleteItem subscription", e))?;
        }
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(conn_pk(id)))
            .key(SK, s(CONN_SK))
            .send()
            .await
            .map_err(|e| Error::aws("DeleteItem connection", e))?;
        Ok(())
    }

    async fn subscribers(&self, topics: &[Topic]) -> Result<Vec<Subscriber>> {
        let mut found: BTreeMap<String, Subscriber> = BTreeMap::new();
        for topic in topics {
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(topic_pk(topic)))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| Error::aws("Query subscriptions", e))?;
                for item in out.items() {
                    let Some(id) = item.get(SK).and_then(|v| v.as_s().ok()) else {
                        continue;
                    };
                    found.entry(id.clone()).or_insert(Subscriber {
                        connection_id: id.clone(),
                        viewer: viewer_of(item)?,
                    });
                }
                start = out.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        Ok(found.into_values().collect())
    }
}

/// In memory, for the fast tier.
#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
pub struct MemoryConnectionStore {
    inner: std::sync::Mutex<MemoryConnections>,
}

#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
struct MemoryConnections {
    connections: BTreeMap<String, (Connection, std::collections::BTreeSet<Topic>)>,
}

#[cfg(any(test, feature = "testing"))]
impl MemoryConnectionStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The ids of the connections held.
    pub fn ids(&self) -> Vec<String> {
        self.inner.lock().expect("lock").connections.keys().cloned().collect()
    }

    /// The topics of a connection.
    pub fn topics(&self, id: &str) -> Vec<Topic> {
        let inner = self.inner.lock().expect("lock");
        inner
            .connections
            .get(id)
            .map(|(_, t)| t.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(any(test, feature = "testing"))]
#[async_trait]
impl ConnectionStore for MemoryConnectionStore {
    async fn connect(&self, c: &Connection) -> Result<()> {
        let mut inner = self.inner.lock().expect("lock");
        inner.connections.insert(c.id.clone(), (c.clone(), Default::default()));
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Connection>> {
        Ok(self
            .inner
            .lock()
            .expect("lock")
            .connections
            .get(id)
            .map(|(c, _)| c.clone()))
    }

    async fn subscribe(&self, c: &Connection, topic: &Topic) -> Result<()> {
        let mut inner = self.inner.lock().expect("lock");
        let (_, topics) = inner
            .connections
            .get_mut(&c.id)
            .ok_or_else(|| Error::NotFound(format!("connection {} is gone", c.id)))?;
        topics.insert(topic.clone());
        Ok(())
    }

    async fn unsubscribe(&self, id: &str, topic: &Topic) -> Result<()> {
        let mut inner = self.inner.lock().expect("lock");
        if let Some((_, topics)) = inner.connections.get_mut(id) {
            topics.remove(topic);
        }
        Ok(())
    }

    async fn disconnect(&self, id: &str) -> Result<()> {
        self.inner.lock().expect("lock").connections.remove(id);
        Ok(())
    }

    async fn subscribers(&self, topics: &[Topic]) -> Result<Vec<Subscriber>> {
        let inner = self.inner.lock().expect("lock");
        Ok(inner
            .connections
            .values()
            .filter(|(_, t)| topics.iter().any(|topic| t.contains(topic)))
            .map(|(c, _)| Subscriber {
                connection_id: c.id.clone(),
                viewer: c.viewer.clone(),
            })
            .collect())
    }
}

//! The optional Prometheus check of an analysis: an instant query whose one value must stay
//! at or under a limit.

use serde::Deserialize;

use crate::config::PrometheusCheck;

/// Why the check's query gave no value.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// The query template does not render.
    #[error("the Prometheus query is not a valid template: {0}")]
    Template(String),
    /// `url` is not a URL.
    #[error("the Prometheus url `{url}` is not a URL")]
    Url {
        /// As written.
        url: String,
        /// Why.
        #[source]
        source: url::ParseError,
    },
    /// The server did not answer, or not with a query result.
    #[error("Prometheus at {url} did not answer the query")]
    Request {
        /// The server.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The answer is not one number.
    #[error("the Prometheus query `{0}` returned no single number")]
    NotANumber(String),
}

/// Runs the check's query (a template of `version` and `revision`) and returns its value.
pub async fn query(
    client: &reqwest::Client,
    check: &PrometheusCheck,
    version: &str,
    revision: u64,
) -> Result<f64, PrometheusError> {
    let text = crate::template::render(
        &check.query,
        &minijinja::context! { version => version, revision => revision },
    )
    .map_err(|e| PrometheusError::Template(e.message))?;
    let mut url = reqwest::Url::parse(&format!("{}/api/v1/query", check.url.trim_end_matches('/')))
        .map_err(|source| PrometheusError::Url {
            url: check.url.clone(),
            source,
        })?;
    url.query_pairs_mut().append_pair("query", &text);
    let request = |source| PrometheusError::Request {
        url: check.url.clone(),
        source,
    };
    let answer: Answer = client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(request)?
        .json()
        .await
        .map_err(request)?;
    value(&answer).ok_or(PrometheusError::NotANumber(text))
}

#[derive(Debug, Deserialize)]
struct Answer {
    status: String,
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

/// A scalar, or the one sample of a vector: `[time, "value"]`.
fn value(answer: &Answer) -> Option<f64> {
    let data = answer
        .data
        .as_ref()
        .filter(|_| answer.status == "success")?;
    let pair = match data.result_type.as_str() {
        "scalar" => data.result.clone(),
        "vector" => data.result.as_array().filter(|a| a.len() == 1)?[0]["value"].clone(),
        _ => return None,
    };
    pair.get(1)?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_single_vectors() {
        let parse = |s: &str| value(&serde_json::from_str(s).unwrap());
        assert_eq!(
            parse(r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"0.25"]}}"#),
            Some(0.25)
        );
        assert_eq!(
            parse(
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.5,"3"]}]}}"#
            ),
            Some(3.0)
        );
        assert_eq!(
            parse(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
            None
        );
        assert_eq!(parse(r#"{"status":"error"}"#), None);
    }
}

//! Task definitions: the families, a family's revisions, and a line diff between two
//! revisions' JSON.

use super::api::{self, short, text};
use super::html::{url, Html};
use super::session::Viewer;
use super::{failed, Outcome};
use crate::error::ApiError;
use axum::extract::{Path, Query};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

/// Lines past which a diff is not computed (the table is quadratic in them).
const DIFF_MAX_LINES: usize = 3000;

/// `GET /console/task-definitions`.
pub async fn families(viewer: Viewer) -> Response {
    let mut h = Html::new();
    match render_families(&viewer).await {
        Ok(list) => {
            h.raw(&list.into_string());
        }
        Err(e) => failed(&mut h, &e),
    };
    viewer.page("Task definitions", &h.into_string())
}

async fn render_families(viewer: &Viewer) -> Outcome {
    let families =
        api::list_all(viewer, "ListTaskDefinitionFamilies", json!({}), "families").await?;
    let mut h = Html::new();
    h.raw("<ul class=\"families\">");
    for family in &families {
        h.raw("<li>")
            .link(
                &format!("/console/task-definitions/{}", url(family)),
                family,
            )
            .raw("</li>");
    }
    h.raw("</ul>");
    if families.is_empty() {
        h.raw("<p class=\"empty\">No task definitions.</p>");
    }
    Ok(h)
}

/// The revisions picked for a diff.
#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    a: Option<u64>,
    b: Option<u64>,
}

/// `GET /console/task-definitions/{family}?a=&b=`: the revisions, and the diff of `a` to `b`.
pub async fn family(
    viewer: Viewer,
    Path(family): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Response {
    let mut h = Html::new();
    match render_family(&viewer, &family, &query).await {
        Ok(body) => {
            h.raw(&body.into_string());
        }
        Err(e) => failed(&mut h, &e),
    };
    viewer.page(&format!("Task definition {family}"), &h.into_string())
}

async fn render_family(viewer: &Viewer, family: &str, query: &DiffQuery) -> Outcome {
    let mut revisions: Vec<(u64, String)> = Vec::new();
    for status in ["ACTIVE", "INACTIVE"] {
        let arns = api::list_all(
            viewer,
            "ListTaskDefinitions",
            json!({"familyPrefix": family, "status": status}),
            "taskDefinitionArns",
        )
        .await?;
        revisions.extend(arns.into_iter().filter_map(|arn| {
            let (f, r) = short(&arn).rsplit_once(':')?;
            (f == family)
                .then(|| r.parse().ok())
                .flatten()
                .map(|r| (r, status.to_string()))
        }));
    }
    revisions.sort();
    let mut h = Html::new();
    h.el("h2", "Revisions");
    h.raw("<table class=\"revisions\">")
        .head(&["Revision", "Status"]);
    for (revision, status) in &revisions {
        h.row(&[&format!("{family}:{revision}"), status]);
    }
    h.raw("</table>");
    if revisions.is_empty() {
        h.raw("<p class=\"empty\">No revisions of this family.</p>");
        return Ok(h);
    }
    let newest = revisions.last().map(|r| r.0).unwrap_or(1);
    let a = query.a.unwrap_or(newest.saturating_sub(1).max(1));
    let b = query.b.unwrap_or(newest);
    h.el("h2", "Compare revisions");
    h.raw("<form method=\"get\" class=\"diff-form\">");
    for (name, picked) in [("a", a), ("b", b)] {
        h.raw("<select name=\"").raw(name).raw("\">");
        for (revision, _) in &revisions {
            let selected = if *revision == picked { " selected" } else { "" };
            h.raw(&format!("<option value=\"{revision}\"{selected}>"))
                .text(&format!("{family}:{revision}"))
                .raw("</option>");
        }
        h.raw("</select>");
    }
    h.raw("<button type=\"submit\">Diff</button></form>");
    let left = describe(viewer, family, a).await?;
    let right = describe(viewer, family, b).await?;
    h.raw("<table class=\"diff\">");
    for line in diff_lines(&left, &right) {
        let (class, mark, text) = match &line {
            Line::Same(t) => ("same", " ", t),
            Line::Removed(t) => ("del", "-", t),
            Line::Added(t) => ("add", "+", t),
        };
        h.raw("<tr class=\"")
            .raw(class)
            .raw("\"><td class=\"mark\">")
            .raw(mark)
            .raw("</td><td><pre>")
            .text(text)
            .raw("</pre></td></tr>");
    }
    h.raw("</table>");
    Ok(h)
}

/// A revision's definition as pretty JSON lines, without the fields every revision differs in.
async fn describe(viewer: &Viewer, family: &str, revision: u64) -> Result<Vec<String>, ApiError> {
    let mut answer = api::ecs(
        viewer,
        "DescribeTaskDefinition",
        json!({"taskDefinition": format!("{family}:{revision}")}),
    )
    .await?;
    let mut td = answer["taskDefinition"].take();
    if let Value::Object(map) = &mut td {
        for noisy in [
            "taskDefinitionArn",
            "revision",
            "registeredAt",
            "registeredBy",
        ] {
            map.remove(noisy);
        }
    }
    let pretty = serde_json::to_string_pretty(&td).unwrap_or_else(|_| text(&td));
    Ok(pretty.lines().map(str::to_string).collect())
}

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Same(String),
    Removed(String),
    Added(String),
}

/// The line diff from `a` to `b` (longest common subsequence); past [`DIFF_MAX_LINES`] the
/// whole of `a` removed and `b` added.
pub fn diff_lines(a: &[String], b: &[String]) -> Vec<Line> {
    if a.len() > DIFF_MAX_LINES || b.len() > DIFF_MAX_LINES {
        let removed = a.iter().cloned().map(Line::Removed);
        return removed.chain(b.iter().cloned().map(Line::Added)).collect();
    }
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len() + b.len());
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(Line::Same(a[i].clone()));
            i += 1;
            j += 1;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            out.push(Line::Removed(a[i].clone()));
            i += 1;
        } else {
            out.push(Line::Added(b[j].clone()));
            j += 1;
        }
    }
    out.extend(a[i..].iter().cloned().map(Line::Removed));
    out.extend(b[j..].iter().cloned().map(Line::Added));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn a_changed_line_shows_as_removed_then_added() {
        let diff = diff_lines(&lines("a\nb\nc"), &lines("a\nB\nc\nd"));
        assert_eq!(
            diff,
            vec![
                Line::Same("a".into()),
                Line::Removed("b".into()),
                Line::Added("B".into()),
                Line::Same("c".into()),
                Line::Added("d".into()),
            ]
        );
    }

    #[test]
    fn identical_revisions_diff_to_nothing_but_same_lines() {
        let a = lines("x\ny");
        assert!(diff_lines(&a, &a)
            .iter()
            .all(|l| matches!(l, Line::Same(_))));
    }
}

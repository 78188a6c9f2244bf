//! How client commands print: tables for people, JSON for scripts.

use comfy_table::{presets::ASCII_FULL, Table};
use serde_json::Value;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A list of objects: one row each, columns in `columns` order (or the first item's keys).
pub fn list(format: Format, items: &[Value], columns: &[&str]) {
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&Value::Array(items.to_vec())).unwrap_or_default()
        );
        return;
    }
    let cols: Vec<String> = if columns.is_empty() {
        items
            .first()
            .and_then(Value::as_object)
            .map(|o| o.keys().filter(|k| *k != "links").cloned().collect())
            .unwrap_or_default()
    } else {
        columns.iter().map(|c| c.to_string()).collect()
    };
    let mut table = Table::new();
    table
        .load_preset(ASCII_FULL)
        .set_header(cols.iter().map(|c| c.as_str()));
    for item in items {
        table.add_row(
            cols.iter()
                .map(|c| cell(item.get(c).unwrap_or(&Value::Null))),
        );
    }
    println!("{table}");
}

/// One object: a Property / Value table.
pub fn show(format: Format, item: &Value) {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(item).unwrap_or_default());
        return;
    }
    let Some(obj) = item.as_object() else {
        println!("{}", cell(item));
        return;
    };
    let mut table = Table::new();
    table
        .load_preset(ASCII_FULL)
        .set_header(["Property", "Value"]);
    for (k, v) in obj.iter().filter(|(k, _)| *k != "links") {
        table.add_row([k.clone(), cell(v)]);
    }
    println!("{table}");
}

/// The answer of an action (a board's message).
pub fn reply(format: Format, v: &Value) {
    match (format, v) {
        (Format::Table, Value::String(s)) => println!("{s}"),
        _ => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
    }
}

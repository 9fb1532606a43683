//! JSON as Polar serialises it: prices, products, discounts, organisations and
//! checkout links, with Polar's field names and order.

use serde::Serialize;
use serde_json::value::RawValue;

mod catalog;
mod link;
mod order;
mod organization;

pub use catalog::Catalog;
pub use link::link;
pub use order::order;
pub use organization::organization;

pub type Raw = Box<RawValue>;

fn raw<T: Serialize>(v: &T) -> Raw {
    serde_json::value::to_raw_value(v).expect("emulator records serialise")
}

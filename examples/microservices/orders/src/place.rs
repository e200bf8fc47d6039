//! Placing and reading orders: one transaction across the orders, users and inventory modules.

use std::collections::BTreeMap;

use pgdbm::prelude::*;
use uuid::Uuid;

use crate::{NewOrder, Order, OrderDetails, OrderError, OrderItem, OrderPlaced, outbox};

/// The most lines an order may have.
const MAX_LINES: usize = 100;

const ORDER_COLUMNS: &str = "id, user_id, status, total_cents, created_at";

/// The orders service: its own handle and handles on the users and inventory modules.
///
/// All three must be on the same database — in practice the same pool: the other modules' SQL
/// runs on the orders transaction's connection, with their schemas. In one process they are
/// three [`Database::new`] handles on one shared pool; in an orders process of its own they
/// come from its own pool (`orders_db.with_schema(Some("inventory"))`).
#[derive(Debug, Clone)]
pub struct Orders {
    db: Database,
    users: Database,
    inventory: Database,
}

impl Orders {
    /// The service on the orders module's handle `db`, with the users and inventory modules'
    /// handles.
    pub fn new(db: Database, users: Database, inventory: Database) -> Self {
        Orders {
            db,
            users,
            inventory,
        }
    }

    /// The orders module's handle.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Places an order in one transaction: checks the user (users module), takes the stock of
    /// every line (inventory module, products in id order so that concurrent orders lock them
    /// in the same order), writes the order and its items, and publishes `order.placed` to the
    /// [`outbox`] (whose notification is sent at commit). Any failure rolls all of it back.
    ///
    /// # Errors
    ///
    /// [`OrderError::Invalid`] for no lines, too many, or a quantity below 1;
    /// [`OrderError::UnknownUser`]; [`OrderError::Inventory`] for an unknown product or one out
    /// of stock (nothing was written); [`OrderError::Database`].
    pub async fn place(&self, new: &NewOrder) -> Result<OrderDetails, OrderError> {
        let lines = merge_lines(new)?;
        let user_id = new.user_id;
        let (users, inventory) = (self.users.clone(), self.inventory.clone());
        self.db
            .transaction(|tx| async move {
                if users_service::find(&tx.with_schema_of(&users), user_id)
                    .await?
                    .is_none()
                {
                    return Err(OrderError::UnknownUser(user_id));
                }
                let order_id: Uuid = tx
                    .fetch_value(
                        "INSERT INTO {{tables.orders}} (user_id) VALUES ($1) RETURNING id",
                        params![user_id],
                    )
                    .await?;
                let stock = tx.with_schema_of(&inventory);
                let mut items = Vec::with_capacity(lines.len());
                for (product_id, quantity) in lines {
                    let taken =
                        inventory_service::reserve(&stock, order_id, product_id, quantity).await?;
                    tx.execute(
                        "INSERT INTO {{tables.order_items}}
                         (order_id, product_id, quantity, unit_price_cents) VALUES ($1, $2, $3, $4)",
                        params![order_id, product_id, quantity, taken.unit_price_cents],
                    )
                    .await?;
                    items.push(OrderItem {
                        product_id,
                        quantity,
                        unit_price_cents: taken.unit_price_cents,
                    });
                }
                let total_cents = items
                    .iter()
                    .map(|i| i64::from(i.quantity) * i.unit_price_cents)
                    .sum::<i64>();
                let sql = format!(
                    "UPDATE {{{{tables.orders}}}} SET total_cents = $2 WHERE id = $1
                     RETURNING {ORDER_COLUMNS}"
                );
                let order: Order = tx
                    .fetch_one_as(&sql, params![order_id, total_cents])
                    .await?;
                let event = OrderPlaced {
                    order_id,
                    user_id,
                    total_cents,
                };
                outbox::publish(&tx, "order.placed", &event).await?;
                Ok(OrderDetails { order, items })
            })
            .await
    }

    /// The order with `id` and its items, if any.
    ///
    /// # Errors
    ///
    /// The database's errors.
    pub async fn find(&self, id: Uuid) -> pgdbm::Result<Option<OrderDetails>> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM {{{{tables.orders}}}} WHERE id = $1");
        let Some(order) = self
            .db
            .fetch_optional_as::<Order>(&sql, params![id])
            .await?
        else {
            return Ok(None);
        };
        let items = self
            .db
            .fetch_all_as(
                "SELECT product_id, quantity, unit_price_cents FROM {{tables.order_items}}
                 WHERE order_id = $1 ORDER BY product_id",
                params![id],
            )
            .await?;
        Ok(Some(OrderDetails { order, items }))
    }
}

/// The order's lines by product id (sorted), quantities of the same product added up.
fn merge_lines(new: &NewOrder) -> Result<BTreeMap<Uuid, i32>, OrderError> {
    if new.items.is_empty() {
        return Err(OrderError::invalid("items", "must not be empty"));
    }
    if new.items.len() > MAX_LINES {
        return Err(OrderError::invalid("items", "must have at most 100 lines"));
    }
    let mut lines = BTreeMap::new();
    for line in &new.items {
        if line.quantity < 1 {
            return Err(OrderError::invalid("quantity", "must be at least 1"));
        }
        let quantity = lines.entry(line.product_id).or_insert(0_i32);
        *quantity = quantity
            .checked_add(line.quantity)
            .ok_or_else(|| OrderError::invalid("quantity", "is too large"))?;
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OrderLine;

    fn order(items: &[(u128, i32)]) -> NewOrder {
        NewOrder {
            user_id: Uuid::nil(),
            items: items
                .iter()
                .map(|&(p, quantity)| OrderLine {
                    product_id: Uuid::from_u128(p),
                    quantity,
                })
                .collect(),
        }
    }

    #[test]
    fn lines_of_one_product_are_added_up_and_sorted() {
        let lines = merge_lines(&order(&[(2, 1), (1, 3), (2, 4)])).unwrap();
        let lines: Vec<(u128, i32)> = lines.into_iter().map(|(p, q)| (p.as_u128(), q)).collect();
        assert_eq!(lines, [(1, 3), (2, 5)]);
    }

    #[test]
    fn bad_lines_are_refused() {
        for bad in [
            order(&[]),
            order(&[(1, 0)]),
            order(&[(1, i32::MAX), (1, 1)]),
        ] {
            assert!(matches!(merge_lines(&bad), Err(OrderError::Invalid { .. })));
        }
    }
}

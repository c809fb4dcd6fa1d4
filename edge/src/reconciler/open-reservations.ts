/**
 * The tenants holding open credit reservations (markers, shared `reservationMarker`). A scan of
 * the tenants table filtered on the attribute: one item per customer, so a run reads the whole
 * (small) table once; at 10,000 tenants of ~1 KB that is ~1,250 read units a minute, a few cents a
 * day on demand. Markers are sets, which cannot key an index.
 */
import { type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { TABLES, TENANT_OPEN_RESERVATIONS } from '@sd3/shared';

export interface TenantMarkers {
  tenantId: string;
  markers: string[];
}

export async function listOpenReservations(
  doc: DynamoDBDocumentClient,
  tenantsTable: string,
): Promise<TenantMarkers[]> {
  const out: TenantMarkers[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await doc.send(
      new ScanCommand({
        TableName: tenantsTable,
        FilterExpression: 'attribute_exists(#open)',
        ProjectionExpression: '#id, #open',
        ExpressionAttributeNames: { '#id': TABLES.tenants.partitionKey, '#open': TENANT_OPEN_RESERVATIONS },
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      const set = item[TENANT_OPEN_RESERVATIONS] as Set<string> | undefined;
      out.push({ tenantId: String(item[TABLES.tenants.partitionKey]), markers: [...(set ?? [])] });
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return out;
}

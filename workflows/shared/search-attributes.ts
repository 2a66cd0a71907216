import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Custom search attributes that make runs findable in the Temporal Web UI. */
export const HostIdKey = defineSearchAttributeKey('HostId', SearchAttributeType.KEYWORD);
export const HostStatusKey = defineSearchAttributeKey('HostStatus', SearchAttributeType.KEYWORD);
export const CustomerIdKey = defineSearchAttributeKey('CustomerId', SearchAttributeType.KEYWORD);
export const RequesterKey = defineSearchAttributeKey('Requester', SearchAttributeType.KEYWORD);
export const LifecycleStatusKey = defineSearchAttributeKey('LifecycleStatus', SearchAttributeType.KEYWORD);

export const ALL_SEARCH_ATTRIBUTES = [HostIdKey, HostStatusKey, CustomerIdKey, RequesterKey, LifecycleStatusKey] as const;

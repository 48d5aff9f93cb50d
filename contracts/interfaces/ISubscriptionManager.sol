// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Plan, Subscription, SubscriptionStatus, RenewalFailure} from "../types/DataTypes.sol";

/// @title ISubscriptionManager
/// @notice Recurring billing: each period's charge is held and earned by the merchant linearly over the period;
/// cancelling refunds the unearned part at once; anyone may renew due subscriptions in batches.
interface ISubscriptionManager {
    // ------------------------------------------------------------------------------------------------ events

    /// @notice A merchant created a plan.
    event PlanCreated(
        uint32 indexed planId,
        uint64 indexed merchantId,
        address token,
        uint96 price,
        uint32 period,
        uint32 trial,
        uint32 gracePeriod
    );
    /// @notice A plan's price (for periods starting from now on) or its availability changed.
    event PlanUpdated(uint32 indexed planId, uint64 indexed merchantId, uint96 price, bool active);
    /// @notice A wallet subscribed. `trialEndsAt` is zero without a trial (the plan has none, or the wallet already
    /// used it: then `TrialAlreadyUsed` is emitted too).
    event SubscriptionCreated(
        uint256 indexed subscriptionId,
        uint32 indexed planId,
        uint64 indexed merchantId,
        address subscriber,
        uint96 maxPrice,
        uint40 trialEndsAt
    );
    /// @notice The plan has a trial but the wallet already used it (a wallet gets each plan's trial once): the
    /// subscription starts charged, without a trial.
    event TrialAlreadyUsed(uint256 indexed subscriptionId, uint32 indexed planId, address indexed subscriber);
    /// @notice A period was charged (first period or renewal) and is held, earning linearly until `periodEnd`.
    event SubscriptionCharged(
        uint256 indexed subscriptionId,
        uint64 indexed merchantId,
        address indexed subscriber,
        address token,
        uint96 amount,
        uint40 periodStart,
        uint40 periodEnd
    );
    /// @notice A renewal could not charge; it is retried until `retryUntil`, then the subscription lapses.
    event SubscriptionPaymentFailed(
        uint256 indexed subscriptionId, uint64 indexed merchantId, RenewalFailure reason, uint40 retryUntil
    );
    /// @notice The grace period ended without a successful charge.
    event SubscriptionLapsed(uint256 indexed subscriptionId, uint64 indexed merchantId);
    /// @notice The subscription was cancelled; `refunded` went back to the subscriber, `earned` to the merchant.
    event SubscriptionCanceled(
        uint256 indexed subscriptionId,
        uint64 indexed merchantId,
        address indexed subscriber,
        address token,
        uint256 refunded,
        uint256 earned,
        address canceledBy
    );
    /// @notice The subscriber moved to another plan of the same merchant and token. `status` is the subscription's
    /// status after the change: `Active` when a new period started now (ending at `periodEnd`), `Trialing` when the
    /// trial goes on (ending at `periodEnd`, all amounts zero).
    /// @param earned Part of the old period's charge earned by the merchant, rounded up (every started base unit).
    /// @param credit Unearned remainder of the old period applied to the new one.
    /// @param charged Pulled from the subscriber on top of the credit (the full price when a trial ends this way).
    /// @param refunded Credit in excess of the new price, sent back to the subscriber.
    event SubscriptionPlanChanged(
        uint256 indexed subscriptionId,
        uint64 indexed merchantId,
        uint32 oldPlanId,
        uint32 newPlanId,
        uint256 earned,
        uint256 credit,
        uint256 charged,
        uint256 refunded,
        uint40 periodEnd,
        SubscriptionStatus status
    );
    /// @notice The subscriber changed the cap on the price they accept.
    event MaxPriceChanged(uint256 indexed subscriptionId, uint96 maxPrice);
    /// @notice Earned money was sent to the merchant's payout address.
    event MerchantWithdrawal(uint64 indexed merchantId, address indexed token, address payout, uint256 amount);
    /// @notice New subscriptions were paused or resumed.
    event PausedSet(bool paused);

    // ------------------------------------------------------------------------------------------------ errors

    /// @notice New subscriptions are paused.
    error SubscriptionsPaused();
    /// @notice The plan does not exist.
    error UnknownPlan(uint32 planId);
    /// @notice The plan does not accept new subscriptions.
    error PlanInactive(uint32 planId);
    /// @notice The subscription does not exist.
    error UnknownSubscription(uint256 subscriptionId);
    /// @notice The plan's price is above the subscriber's maximum.
    error PriceAboveMaximum(uint96 price, uint96 maxPrice);
    /// @notice The period length is zero or above the maximum.
    error InvalidPeriod(uint32 period);
    /// @notice The trial is longer than the maximum.
    error TrialTooLong(uint32 trial);
    /// @notice The grace period is not strictly shorter than the period.
    error GracePeriodTooLong(uint32 gracePeriod, uint32 period);
    /// @notice The caller may not act on this subscription.
    error NotSubscriber(address subscriber, address caller);
    /// @notice The caller is neither the subscriber nor an operator of the merchant.
    error NotSubscriberOrMerchant(uint256 subscriptionId, address caller);
    /// @notice The subscription is not in a state that allows the operation.
    error InvalidSubscriptionStatus(SubscriptionStatus status);
    /// @notice The plans differ in merchant or token.
    error PlanMismatch(uint32 fromPlanId, uint32 toPlanId);
    /// @notice A plan change to the plan the subscription is already on.
    error SamePlan(uint32 planId);
    /// @notice The current period (or trial) ended at `periodEnd` and was not renewed yet: renew first.
    error RenewalDue(uint40 periodEnd);
    /// @notice The subscription belongs to another merchant or token.
    error SubscriptionMismatch(uint256 subscriptionId);
    /// @notice The batch is empty or too large.
    error InvalidBatchSize(uint256 size);
    /// @notice The caller is neither the merchant's owner nor its signer.
    error NotMerchantOperator(uint64 merchantId, address caller);
    /// @notice Nothing to withdraw.
    error NothingToWithdraw(uint64 merchantId, address token);

    // ------------------------------------------------------------------------------------------------ merchant

    /// @notice Creates a plan. Merchant owner or signer. The grace period must be strictly shorter than the period.
    function createPlan(
        uint64 merchantId,
        address token,
        uint96 price,
        uint32 period,
        uint32 trial,
        uint32 gracePeriod
    ) external returns (uint32 planId);

    /// @notice Sets the price for periods starting from now on. Merchant owner or signer.
    function setPlanPrice(uint32 planId, uint96 price) external;

    /// @notice Opens or closes a plan to new subscribers; existing subscriptions continue. Merchant owner or signer.
    function setPlanActive(uint32 planId, bool active) external;

    /// @notice Moves what the listed subscriptions have earned so far, plus everything already earned, to the
    /// merchant's payout address. Anyone (the money can only go to the payout address).
    function withdraw(uint64 merchantId, address token, uint256[] calldata subscriptionIds)
        external
        returns (uint256 amount);

    // ------------------------------------------------------------------------------------------------ subscriber

    /// @notice Subscribes the caller; the first period is charged now, or when the trial ends. A wallet gets each
    /// plan's trial once: subscribing again to a plan whose trial it used starts charged (`TrialAlreadyUsed`).
    /// @param maxPrice The most the caller accepts to pay for any one period.
    function subscribe(uint32 planId, uint96 maxPrice) external returns (uint256 subscriptionId);

    /// @notice Subscribes with an EIP-2612 permit of `permitValue` (e.g. a year of periods) instead of an approval.
    function subscribeWithPermit(
        uint32 planId,
        uint96 maxPrice,
        uint256 permitValue,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 subscriptionId);

    /// @notice Cancels, refunding the unearned part of the current period (rounded in the subscriber's favour).
    /// Subscriber or merchant owner or signer.
    function cancel(uint256 subscriptionId) external returns (uint256 refunded);

    /// @notice Moves to another plan of the same merchant and token with proration. Subscriber only.
    /// @dev Only while the current period (or trial) runs (`RenewalDue` once it ended: renew first), never to the
    /// same plan (`SamePlan`). Active: the earned part, rounded up (every started base unit of time is paid for),
    /// goes to the merchant, the rest is credited toward the new plan's first period, which starts now. Trialing:
    /// the trial goes on only as far as the new plan's own trial allows (trial start + its trial, never past the
    /// current end); a new plan without trial time left is charged now for a full period. Either way the wallet
    /// has used the new plan's trial.
    function changePlan(uint256 subscriptionId, uint32 newPlanId, uint96 newMaxPrice) external;

    /// @notice Changes the cap on the price the subscriber accepts. Subscriber only.
    function setMaxPrice(uint256 subscriptionId, uint96 maxPrice) external;

    // ------------------------------------------------------------------------------------------------ keepers

    /// @notice Renews every due subscription in the list; not-due or ended ones are skipped and a failed charge
    /// never reverts the batch. Anyone.
    /// @dev No charge for time the subscriber could not use: a `PastDue` subscription (an earlier attempt failed)
    /// or one renewed at or after its grace end starts its new period at the successful charge; a running
    /// subscription renewed late within its grace period keeps its billing anchor (the new period starts at the
    /// old period's end), so keeper latency never shifts billing dates.
    /// @return renewed Number of subscriptions charged.
    function renew(uint256[] calldata subscriptionIds) external returns (uint256 renewed);

    /// @notice Pauses or resumes new subscriptions; renewals, cancels and withdrawals always work. Owner only.
    function setPaused(bool shouldPause) external;

    // ------------------------------------------------------------------------------------------------ views

    /// @notice A plan.
    function plan(uint32 planId) external view returns (Plan memory);

    /// @notice A subscription.
    function subscription(uint256 subscriptionId) external view returns (Subscription memory);

    /// @notice What the merchant has earned on this subscription's current period and not yet collected.
    function earnedNow(uint256 subscriptionId) external view returns (uint256);

    /// @notice Earned and collected, ready to withdraw, per merchant and token.
    function merchantBalance(uint64 merchantId, address token) external view returns (uint256);

    /// @notice Whether the subscription is due for renewal now.
    function isDue(uint256 subscriptionId) external view returns (bool);

    /// @notice Whether `subscriber` already used plan `planId`'s trial (a wallet gets each plan's trial once).
    function trialUsed(address subscriber, uint32 planId) external view returns (bool);
}

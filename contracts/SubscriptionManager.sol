// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ISubscriptionManager} from "./interfaces/ISubscriptionManager.sol";
import {IMerchantRegistry} from "./interfaces/IMerchantRegistry.sol";
import {TokenFlows} from "./abstracts/TokenFlows.sol";
import {Plan, Subscription, SubscriptionStatus, RenewalFailure} from "./types/DataTypes.sol";

/// @title SubscriptionManager
/// @notice Recurring ERC-20 billing with linear earning, pro-rata refunds on cancel and batch renewals.
/// @dev A subscription's current charge (`unearned`) earns linearly from `collectedUntil` to `periodEnd`.
/// Earned money moves to `_merchantBalance` when a period closes (renewal, lapse), on cancel, on plan change and
/// when the merchant withdraws. Invariant per token: balance == sum(unearned) + merchant balances + claimable.
contract SubscriptionManager is ISubscriptionManager, TokenFlows, Ownable2Step {
    using SafeERC20 for IERC20;

    /// @notice Longest billing period.
    uint32 public constant MAX_PERIOD = 5 * 365 days;
    /// @notice Longest free trial.
    uint32 public constant MAX_TRIAL = 365 days;
    /// @notice Most subscriptions one `renew` call takes (sized well under a block's gas limit).
    uint256 public constant MAX_BATCH = 250;

    /// @notice The merchant registry (kept by BillingEscrow).
    IMerchantRegistry public immutable REGISTRY;

    struct Counters {
        uint64 subscriptionCount;
        uint32 planCount;
        bool paused;
    }

    Counters private _counters;
    mapping(uint32 planId => Plan) private _plans;
    mapping(uint256 subscriptionId => Subscription) private _subscriptions;
    mapping(uint64 merchantId => mapping(address token => uint256)) private _merchantBalance;
    mapping(address subscriber => mapping(uint32 planId => bool)) private _trialUsed;

    /// @notice Deploys the manager on top of a merchant registry.
    /// @param initialOwner Can pause new subscriptions.
    /// @param registry Merchant registry, the BillingEscrow deployment.
    constructor(address initialOwner, IMerchantRegistry registry) Ownable(initialOwner) {
        if (address(registry) == address(0)) revert ZeroAddress();
        REGISTRY = registry;
    }

    // ------------------------------------------------------------------------------------------------ merchant

    /// @inheritdoc ISubscriptionManager
    function createPlan(
        uint64 merchantId,
        address token,
        uint96 price,
        uint32 period,
        uint32 trial,
        uint32 gracePeriod
    ) external returns (uint32 planId) {
        _requireMerchantOperator(merchantId);
        _requireContract(token);
        if (price == 0) revert ZeroAmount();
        if (period == 0 || period > MAX_PERIOD) revert InvalidPeriod(period);
        if (trial > MAX_TRIAL) revert TrialTooLong(trial);
        // Strictly shorter: a renewal within grace keeps the anchor, so its new period must still be running.
        if (gracePeriod >= period) revert GracePeriodTooLong(gracePeriod, period);
        planId = ++_counters.planCount;
        _plans[planId] = Plan({
            token: token,
            merchantId: merchantId,
            active: true,
            price: price,
            period: period,
            trial: trial,
            gracePeriod: gracePeriod
        });
        emit PlanCreated(planId, merchantId, token, price, period, trial, gracePeriod);
    }

    /// @inheritdoc ISubscriptionManager
    function setPlanPrice(uint32 planId, uint96 price) external {
        Plan storage stored = _requirePlan(planId);
        _requireMerchantOperator(stored.merchantId);
        if (price == 0) revert ZeroAmount();
        stored.price = price;
        emit PlanUpdated(planId, stored.merchantId, price, stored.active);
    }

    /// @inheritdoc ISubscriptionManager
    function setPlanActive(uint32 planId, bool active) external {
        Plan storage stored = _requirePlan(planId);
        _requireMerchantOperator(stored.merchantId);
        stored.active = active;
        emit PlanUpdated(planId, stored.merchantId, stored.price, active);
    }

    /// @inheritdoc ISubscriptionManager
    function withdraw(uint64 merchantId, address token, uint256[] calldata subscriptionIds)
        external
        nonReentrant
        returns (uint256 amount)
    {
        amount = _merchantBalance[merchantId][token];
        for (uint256 i = 0; i < subscriptionIds.length; ++i) {
            uint256 id = subscriptionIds[i];
            Subscription memory sub = _subscriptions[id];
            Plan storage subPlan = _plans[sub.planId];
            if (subPlan.merchantId != merchantId || subPlan.token != token) revert SubscriptionMismatch(id);
            uint256 earned = _earned(sub);
            if (earned == 0) continue;
            amount += earned;
            sub.unearned -= uint96(earned);
            sub.collectedUntil = block.timestamp < sub.periodEnd ? uint40(block.timestamp) : sub.periodEnd;
            _subscriptions[id] = sub;
        }
        if (amount == 0) revert NothingToWithdraw(merchantId, token);
        _merchantBalance[merchantId][token] = 0;
        address payout = REGISTRY.merchant(merchantId).payout;
        // Paid to itself, the money would leave the accounting and be stranded.
        if (payout == address(this)) revert InvalidRecipient(payout);
        _payOrCredit(token, payout, amount);
        emit MerchantWithdrawal(merchantId, token, payout, amount);
    }

    // ------------------------------------------------------------------------------------------------ subscriber

    /// @inheritdoc ISubscriptionManager
    function subscribe(uint32 planId, uint96 maxPrice) external nonReentrant returns (uint256 subscriptionId) {
        return _subscribe(planId, maxPrice);
    }

    /// @inheritdoc ISubscriptionManager
    function subscribeWithPermit(
        uint32 planId,
        uint96 maxPrice,
        uint256 permitValue,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 subscriptionId) {
        _tryPermit(_requirePlan(planId).token, permitValue, deadline, v, r, s);
        return _subscribe(planId, maxPrice);
    }

    /// @inheritdoc ISubscriptionManager
    function cancel(uint256 subscriptionId) external nonReentrant returns (uint256 refunded) {
        Subscription memory sub = _requireSubscription(subscriptionId);
        Plan memory subPlan = _plans[sub.planId];
        if (msg.sender != sub.subscriber && !REGISTRY.isMerchantOperator(subPlan.merchantId, msg.sender)) {
            revert NotSubscriberOrMerchant(subscriptionId, msg.sender);
        }
        _requireRunning(sub.status);

        uint256 earned = _earned(sub);
        // Earned rounds down, so the refund rounds up: any rounding favours the subscriber.
        refunded = sub.unearned - earned;
        if (earned != 0) _merchantBalance[subPlan.merchantId][subPlan.token] += earned;
        sub.status = SubscriptionStatus.Canceled;
        sub.unearned = 0;
        sub.collectedUntil = uint40(block.timestamp);
        _subscriptions[subscriptionId] = sub;

        _payOrCredit(subPlan.token, sub.subscriber, refunded);
        emit SubscriptionCanceled(
            subscriptionId, subPlan.merchantId, sub.subscriber, subPlan.token, refunded, earned, msg.sender
        );
    }

    /// @inheritdoc ISubscriptionManager
    function changePlan(uint256 subscriptionId, uint32 newPlanId, uint96 newMaxPrice) external nonReentrant {
        Subscription memory sub = _requireSubscription(subscriptionId);
        if (msg.sender != sub.subscriber) revert NotSubscriber(sub.subscriber, msg.sender);
        if (sub.status != SubscriptionStatus.Trialing && sub.status != SubscriptionStatus.Active) {
            revert InvalidSubscriptionStatus(sub.status);
        }
        // An ended period is renewed first (from its anchor): a change now would bill the new plan from now and
        // leave the time since the period's end unpaid.
        if (block.timestamp >= sub.periodEnd) revert RenewalDue(sub.periodEnd);
        // Restarting the same plan only restarts the period; it is never needed and was a way to skip earnings.
        if (newPlanId == sub.planId) revert SamePlan(newPlanId);
        Plan memory oldPlan = _plans[sub.planId];
        Plan memory newPlan = _requirePlan(newPlanId);
        if (!newPlan.active) revert PlanInactive(newPlanId);
        if (newPlan.merchantId != oldPlan.merchantId || newPlan.token != oldPlan.token) {
            revert PlanMismatch(sub.planId, newPlanId);
        }
        if (newPlan.price > newMaxPrice) revert PriceAboveMaximum(newPlan.price, newMaxPrice);

        uint32 oldPlanId = sub.planId;
        sub.planId = newPlanId;
        sub.maxPrice = newMaxPrice;
        if (sub.status == SubscriptionStatus.Trialing) {
            _changePlanDuringTrial(subscriptionId, sub, newPlan, oldPlanId);
        } else {
            _prorateIntoNewPlan(subscriptionId, sub, newPlan, oldPlanId);
        }
    }

    /// @inheritdoc ISubscriptionManager
    function setMaxPrice(uint256 subscriptionId, uint96 maxPrice) external {
        Subscription storage stored = _subscriptions[subscriptionId];
        if (stored.subscriber == address(0)) revert UnknownSubscription(subscriptionId);
        if (msg.sender != stored.subscriber) revert NotSubscriber(stored.subscriber, msg.sender);
        _requireRunning(stored.status);
        stored.maxPrice = maxPrice;
        emit MaxPriceChanged(subscriptionId, maxPrice);
    }

    // ------------------------------------------------------------------------------------------------ keepers

    /// @inheritdoc ISubscriptionManager
    function renew(uint256[] calldata subscriptionIds) external nonReentrant returns (uint256 renewed) {
        if (subscriptionIds.length == 0 || subscriptionIds.length > MAX_BATCH) {
            revert InvalidBatchSize(subscriptionIds.length);
        }
        for (uint256 i = 0; i < subscriptionIds.length; ++i) {
            if (_renew(subscriptionIds[i])) ++renewed;
        }
    }

    /// @inheritdoc ISubscriptionManager
    function setPaused(bool shouldPause) external onlyOwner {
        _counters.paused = shouldPause;
        emit PausedSet(shouldPause);
    }

    /// @notice Disabled: an ownerless contract could never be unpaused.
    function renounceOwnership() public view override onlyOwner {
        revert RenounceOwnershipDisabled();
    }

    // ------------------------------------------------------------------------------------------------ views

    /// @inheritdoc ISubscriptionManager
    function plan(uint32 planId) external view returns (Plan memory) {
        return _plans[planId];
    }

    /// @inheritdoc ISubscriptionManager
    function subscription(uint256 subscriptionId) external view returns (Subscription memory) {
        return _subscriptions[subscriptionId];
    }

    /// @inheritdoc ISubscriptionManager
    function earnedNow(uint256 subscriptionId) external view returns (uint256) {
        return _earned(_subscriptions[subscriptionId]);
    }

    /// @inheritdoc ISubscriptionManager
    function merchantBalance(uint64 merchantId, address token) external view returns (uint256) {
        return _merchantBalance[merchantId][token];
    }

    /// @inheritdoc ISubscriptionManager
    function isDue(uint256 subscriptionId) external view returns (bool) {
        Subscription memory sub = _subscriptions[subscriptionId];
        return _isRunning(sub.status) && block.timestamp >= sub.periodEnd;
    }

    /// @inheritdoc ISubscriptionManager
    function trialUsed(address subscriber, uint32 planId) external view returns (bool) {
        return _trialUsed[subscriber][planId];
    }

    /// @notice Number of plans created so far (the highest plan id).
    function planCount() external view returns (uint32) {
        return _counters.planCount;
    }

    /// @notice Number of subscriptions created so far (the highest subscription id).
    function subscriptionCount() external view returns (uint64) {
        return _counters.subscriptionCount;
    }

    /// @notice Whether new subscriptions are paused.
    function paused() external view returns (bool) {
        return _counters.paused;
    }

    // ------------------------------------------------------------------------------------------------ internals

    function _subscribe(uint32 planId, uint96 maxPrice) private returns (uint256 subscriptionId) {
        Counters memory counters = _counters;
        if (counters.paused) revert SubscriptionsPaused();
        Plan memory subPlan = _requirePlan(planId);
        if (!subPlan.active) revert PlanInactive(planId);
        if (subPlan.price > maxPrice) revert PriceAboveMaximum(subPlan.price, maxPrice);

        subscriptionId = ++counters.subscriptionCount;
        _counters = counters;
        uint40 start = uint40(block.timestamp);
        // A wallet gets each plan's trial once; subscribing to that plan again starts charged.
        bool trialing = subPlan.trial != 0 && !_trialUsed[msg.sender][planId];
        if (trialing) _trialUsed[msg.sender][planId] = true;
        uint40 periodEnd = start + (trialing ? subPlan.trial : subPlan.period);
        _subscriptions[subscriptionId] = Subscription({
            subscriber: msg.sender,
            planId: planId,
            status: trialing ? SubscriptionStatus.Trialing : SubscriptionStatus.Active,
            collectedUntil: start,
            unearned: trialing ? 0 : subPlan.price,
            maxPrice: maxPrice,
            periodEnd: periodEnd
        });
        emit SubscriptionCreated(subscriptionId, planId, subPlan.merchantId, msg.sender, maxPrice, trialing ? periodEnd : 0);
        if (!trialing && subPlan.trial != 0) emit TrialAlreadyUsed(subscriptionId, planId, msg.sender);
        if (!trialing) {
            _pullExact(subPlan.token, msg.sender, subPlan.price);
            emit SubscriptionCharged(
                subscriptionId, subPlan.merchantId, msg.sender, subPlan.token, subPlan.price, start, periodEnd
            );
        }
    }

    /// @dev Renews one subscription if it is due. Returns whether it was charged. Never reverts on a failed pull.
    function _renew(uint256 subscriptionId) private returns (bool charged) {
        Subscription memory sub = _subscriptions[subscriptionId];
        if (!_isRunning(sub.status)) return false;
        uint40 due = sub.periodEnd;
        if (block.timestamp < due) return false;

        Plan memory subPlan = _plans[sub.planId];
        // The period that ended is fully earned, whatever happens to the next one.
        if (sub.unearned != 0) _merchantBalance[subPlan.merchantId][subPlan.token] += sub.unearned;
        uint40 graceEnd = due + subPlan.gracePeriod;
        uint40 start = _renewalStart(sub.status, due, graceEnd);
        uint40 end = start + subPlan.period;

        // Effects first, as if the charge succeeds; rewritten below if it does not.
        _subscriptions[subscriptionId] = Subscription({
            subscriber: sub.subscriber,
            planId: sub.planId,
            status: SubscriptionStatus.Active,
            collectedUntil: start,
            unearned: subPlan.price,
            maxPrice: sub.maxPrice,
            periodEnd: end
        });

        RenewalFailure failure;
        if (subPlan.price > sub.maxPrice) {
            failure = RenewalFailure.PriceAboveMaximum;
        } else {
            (charged, failure) = _tryPull(subPlan.token, sub.subscriber, subPlan.price);
        }
        if (charged) {
            emit SubscriptionCharged(
                subscriptionId, subPlan.merchantId, sub.subscriber, subPlan.token, subPlan.price, start, end
            );
            return true;
        }

        bool lapsed = block.timestamp >= graceEnd;
        sub.status = lapsed ? SubscriptionStatus.Lapsed : SubscriptionStatus.PastDue;
        sub.unearned = 0;
        sub.collectedUntil = due;
        _subscriptions[subscriptionId] = sub;
        if (lapsed) {
            emit SubscriptionLapsed(subscriptionId, subPlan.merchantId);
        } else {
            emit SubscriptionPaymentFailed(subscriptionId, subPlan.merchantId, failure, graceEnd);
        }
        return false;
    }

    /// @dev Where a renewal's new period starts: no charge for time the subscriber could not use. After a failed
    /// attempt (PastDue: the merchant suspends access) or from the grace end on, at this charge. A running
    /// subscription renewed late within grace keeps its billing anchor, so keeper latency never shifts billing dates.
    function _renewalStart(SubscriptionStatus status, uint40 due, uint40 graceEnd) private view returns (uint40) {
        return status == SubscriptionStatus.PastDue || block.timestamp >= graceEnd ? uint40(block.timestamp) : due;
    }

    /// @dev Ends the current period now: the earned part (rounded up) goes to the merchant, the unearned rest is
    /// credited toward the new plan's first period (any excess refunded), and the new period starts now.
    function _prorateIntoNewPlan(
        uint256 subscriptionId,
        Subscription memory sub,
        Plan memory newPlan,
        uint32 oldPlanId
    ) private {
        uint256 earned = _earnedRoundedUp(sub);
        uint256 credit = sub.unearned - earned;
        uint256 charge = newPlan.price > credit ? newPlan.price - credit : 0;
        uint256 excess = credit > newPlan.price ? credit - newPlan.price : 0;
        if (earned != 0) _merchantBalance[newPlan.merchantId][newPlan.token] += earned;
        sub.unearned = newPlan.price;
        sub.collectedUntil = uint40(block.timestamp);
        sub.periodEnd = uint40(block.timestamp) + newPlan.period;
        _subscriptions[subscriptionId] = sub;

        if (charge != 0) _pullExact(newPlan.token, msg.sender, charge);
        _payOrCredit(newPlan.token, msg.sender, excess);
        emit SubscriptionPlanChanged(
            subscriptionId,
            newPlan.merchantId,
            oldPlanId,
            sub.planId,
            earned,
            credit,
            charge,
            excess,
            sub.periodEnd,
            SubscriptionStatus.Active
        );
    }

    /// @dev A plan change during a trial. The trial goes on only as far as the new plan's own trial allows: it ends
    /// at the trial's start (`collectedUntil`) plus the new plan's trial, never later than it ends now. With no trial
    /// time left (the new plan has none, or it is used up), the new plan is charged now for a full period. The
    /// wallet has used the new plan's trial either way.
    function _changePlanDuringTrial(
        uint256 subscriptionId,
        Subscription memory sub,
        Plan memory newPlan,
        uint32 oldPlanId
    ) private {
        uint40 trialEnd = 0;
        if (newPlan.trial != 0) {
            _trialUsed[sub.subscriber][sub.planId] = true;
            trialEnd = sub.collectedUntil + newPlan.trial;
            if (trialEnd > sub.periodEnd) trialEnd = sub.periodEnd;
        }
        if (block.timestamp < trialEnd) {
            sub.periodEnd = trialEnd;
            _subscriptions[subscriptionId] = sub;
            emit SubscriptionPlanChanged(
                subscriptionId, newPlan.merchantId, oldPlanId, sub.planId, 0, 0, 0, 0, trialEnd, SubscriptionStatus.Trialing
            );
            return;
        }

        uint40 start = uint40(block.timestamp);
        sub.status = SubscriptionStatus.Active;
        sub.collectedUntil = start;
        sub.unearned = newPlan.price;
        sub.periodEnd = start + newPlan.period;
        _subscriptions[subscriptionId] = sub;

        _pullExact(newPlan.token, msg.sender, newPlan.price);
        emit SubscriptionPlanChanged(
            subscriptionId,
            newPlan.merchantId,
            oldPlanId,
            sub.planId,
            0,
            0,
            newPlan.price,
            0,
            sub.periodEnd,
            SubscriptionStatus.Active
        );
    }

    /// @dev Pulls `amount` without reverting; a token that delivers a different amount is a failure and
    /// whatever it delivered is made claimable by `from`, so the accounting stays exact.
    function _tryPull(address token, address from, uint256 amount)
        private
        returns (bool pulled, RenewalFailure failure)
    {
        IERC20 erc20 = IERC20(token);
        uint256 balanceBefore = erc20.balanceOf(address(this));
        if (!erc20.trySafeTransferFrom(from, address(this), amount)) return (false, RenewalFailure.TransferFailed);
        uint256 received = erc20.balanceOf(address(this)) - balanceBefore;
        if (received == amount) return (true, failure);
        if (received != 0) _credit(token, from, received);
        return (false, RenewalFailure.InexactTransfer);
    }

    /// @dev What the merchant earned so far, rounded up: a plan change pays for every started base unit of time, so
    /// no sequence of changes yields free time. Called only while the period runs (`now < periodEnd`), where it
    /// never exceeds `unearned`.
    function _earnedRoundedUp(Subscription memory sub) private view returns (uint256) {
        if (sub.unearned == 0 || block.timestamp <= sub.collectedUntil) return 0;
        uint256 elapsed = block.timestamp - sub.collectedUntil;
        uint256 length = sub.periodEnd - sub.collectedUntil;
        return (uint256(sub.unearned) * elapsed + length - 1) / length; // < 2^137: no overflow
    }

    function _earned(Subscription memory sub) private view returns (uint256) {
        if (sub.unearned == 0 || block.timestamp <= sub.collectedUntil) return 0;
        if (block.timestamp >= sub.periodEnd) return sub.unearned;
        return (uint256(sub.unearned) * (block.timestamp - sub.collectedUntil)) / (sub.periodEnd - sub.collectedUntil);
    }

    function _requirePlan(uint32 planId) private view returns (Plan storage stored) {
        stored = _plans[planId];
        if (stored.token == address(0)) revert UnknownPlan(planId);
    }

    function _requireSubscription(uint256 subscriptionId) private view returns (Subscription memory sub) {
        sub = _subscriptions[subscriptionId];
        if (sub.subscriber == address(0)) revert UnknownSubscription(subscriptionId);
    }

    function _requireMerchantOperator(uint64 merchantId) private view {
        if (!REGISTRY.isMerchantOperator(merchantId, msg.sender)) revert NotMerchantOperator(merchantId, msg.sender);
    }

    function _requireRunning(SubscriptionStatus status) private pure {
        if (!_isRunning(status)) revert InvalidSubscriptionStatus(status);
    }

    function _isRunning(SubscriptionStatus status) private pure returns (bool) {
        return status == SubscriptionStatus.Trialing || status == SubscriptionStatus.Active
            || status == SubscriptionStatus.PastDue;
    }
}

import { useState } from "preact/hooks";
import { api } from "../api/client";
import type { Plan, Subscription, Usage, User } from "../api/types";
import { ErrorText, formatBytes, formatDate, formatMoney, Section, Spinner, useAction, useLoad, usePageTitle } from "./common";

interface Checkout {
  id: string;
  planId: string;
  amount: number;
  currency: string;
  baseAmount?: number;
  discountPercent?: number;
  status?: string;
  instructions?: string;
}

function Meter(props: { label: string; used: number; limit: number; bytes?: boolean }) {
  const fmt = (n: number) => (props.bytes ? formatBytes(n) : String(n));
  const unlimited = props.limit < 0 || !Number.isFinite(props.limit);
  return (
    <div class="meter">
      <div class="meter-head">
        <span>{props.label}</span>
        <span class="muted">
          {fmt(props.used)} of {unlimited ? "unlimited" : fmt(props.limit)}
        </span>
      </div>
      {!unlimited && (
        <meter min={0} max={Math.max(props.limit, 1)} value={props.used} aria-label={`${props.label} used`} high={props.limit * 0.8} />
      )}
    </div>
  );
}

export function BillingPage(props: { user: User }) {
  usePageTitle("Plans & usage");
  const plans = useLoad(() => api<{ plans: Plan[] }>("/api/plans", { auth: false }).then((r) => r.plans), []);
  const usage = useLoad(() => api<Usage>("/api/usage"), []);
  const sub = useLoad(() => api<{ subscription: Subscription }>("/api/subscription").then((r) => r.subscription), []);
  const [coupon, setCoupon] = useState("");
  const [couponPlan, setCouponPlan] = useState("starter");
  const [couponResult, setCouponResult] = useState<string | null>(null);
  // a code is sent with a checkout only after it was validated for that plan
  const [validCoupon, setValidCoupon] = useState<{ code: string; planId: string; percent: number } | null>(null);
  const [checkout, setCheckout] = useState<Checkout | null>(null);
  const action = useAction();

  const validate = (e: Event) => {
    e.preventDefault();
    void action.run(async () => {
      const r = await api<{ valid: boolean; discountPercent?: number; reason?: string }>("/api/coupons/validate", {
        json: { code: coupon, planId: couponPlan },
      });
      setValidCoupon(r.valid ? { code: coupon.trim(), planId: couponPlan, percent: r.discountPercent ?? 0 } : null);
      setCouponResult(
        r.valid
          ? `Valid: ${r.discountPercent ?? 0} % off.`
          : `Not valid (${(r.reason ?? "unknown").replace(/_/g, " ")}).`,
      );
    });
  };
  const buy = (planId: string) =>
    action.run(async () => {
      const body: Record<string, string> = { planId };
      if (validCoupon && validCoupon.planId === planId) body.couponCode = validCoupon.code;
      const r = await api<{ checkout: Checkout }>("/api/subscription/checkout", { json: body });
      setCheckout(r.checkout);
      await Promise.all([sub.reload(), usage.reload()]);
    });
  const cancel = () =>
    action.run(async () => {
      await api("/api/subscription/cancel", { method: "POST" });
      await sub.reload();
    });

  const current = sub.data?.plan ?? props.user.plan;
  return (
    <div class="page">
      <h1>Plans &amp; usage</h1>
      <ErrorText error={action.error} />
      <Section title="Today's usage">
        {usage.loading && !usage.data && <Spinner />}
        <ErrorText error={usage.error} />
        {usage.data && (
          <div class="meters">
            <Meter label="AI answers" used={usage.data.used.ai} limit={usage.data.limits.aiPerDay} />
            <Meter label="Uploads" used={usage.data.used.uploads} limit={usage.data.limits.uploadsPerDay} />
            <Meter label="Storage" used={usage.data.used.storageBytes} limit={usage.data.limits.storageBytes} bytes />
            {usage.data.used.notebooks !== undefined && (
              <Meter label="Notebooks" used={usage.data.used.notebooks} limit={usage.data.limits.notebooks} />
            )}
            {usage.data.used.boards !== undefined && <Meter label="Boards" used={usage.data.used.boards} limit={usage.data.limits.boards} />}
          </div>
        )}
      </Section>
      <Section title="Your subscription">
        {sub.data ? (
          <p>
            Plan <strong>{sub.data.plan}</strong> · {sub.data.status}
            {sub.data.currentPeriodEnd && ` · ${sub.data.cancelAtPeriodEnd ? "ends" : "renews"} ${formatDate(sub.data.currentPeriodEnd)}`}
            {sub.data.plan !== "free" && !sub.data.cancelAtPeriodEnd && (
              <>
                {" "}
                <button type="button" onClick={() => void cancel()}>
                  Cancel at period end
                </button>
              </>
            )}
          </p>
        ) : (
          <Spinner />
        )}
      </Section>
      <Section title="Plans">
        <ErrorText error={plans.error} />
        <div class="plans">
          {plans.data?.map((p) => (
            <article key={p.id} class={`plan ${p.id === current ? "current" : ""}`} aria-labelledby={`plan-${p.id}`}>
              <h3 id={`plan-${p.id}`}>{p.name}</h3>
              <p class="price">{p.price === 0 ? "Free" : `${formatMoney(p.price, p.currency)} / month`}</p>
              <ul class="bullets small">
                <li>{p.limits.aiPerDay} AI answers a day</li>
                <li>{p.limits.uploadsPerDay} uploads a day</li>
                <li>{formatBytes(p.limits.storageBytes)} storage</li>
                <li>
                  {p.limits.notebooks} notebooks, {p.limits.boards} boards
                </li>
              </ul>
              {p.id === current ? (
                <p class="muted">Your plan</p>
              ) : p.price > 0 ? (
                <button type="button" class="primary" onClick={() => void buy(p.id)} disabled={action.busy}>
                  Choose {p.name}
                </button>
              ) : null}
            </article>
          ))}
        </div>
        {checkout && (
          <div class="notice" role="status">
            <strong>Checkout {checkout.status ?? "created"}:</strong> {formatMoney(checkout.amount, checkout.currency)}
            {checkout.discountPercent ? ` (${checkout.discountPercent} % off)` : ""}.{" "}
            {checkout.instructions}
          </div>
        )}
      </Section>
      <Section title="Coupon">
        <form class="inline wrap" onSubmit={validate}>
          <label for="coupon-code">Code</label>
          <input id="coupon-code" value={coupon} required onInput={(e) => setCoupon((e.currentTarget as HTMLInputElement).value)} />
          <label for="coupon-plan">For plan</label>
          <select id="coupon-plan" value={couponPlan} onChange={(e) => setCouponPlan((e.currentTarget as HTMLSelectElement).value)}>
            {plans.data
              ?.filter((p) => p.price > 0)
              .map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                </option>
              ))}
          </select>
          <button type="submit">Check coupon</button>
        </form>
        {couponResult && (
          <p role="status" data-testid="coupon-result">
            {couponResult} A valid code applies when you choose that plan.
          </p>
        )}
      </Section>
    </div>
  );
}

/** Who a request comes from, once its credentials were checked (on `res.locals.caller`). */
export type Caller =
  | { readonly kind: 'user'; readonly userId: string }
  | { readonly kind: 'operator'; readonly subject: string };

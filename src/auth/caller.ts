/** Who is asking: the token's subject, and whether it carries the admin role. */
export interface Caller {
  customerId: string;
  isAdmin: boolean;
}
